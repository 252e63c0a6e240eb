"""If / Elif / Else with a OneOf pipeline output: only the matching branch runs."""
from kfp import dsl


@dsl.component
def roll(value: int) -> int:
    return value


@dsl.component
def say(text: str) -> str:
    return text


@dsl.pipeline(name="conditions")
def pipeline(value: int = 7) -> str:
    rolled = roll(value=value)
    with dsl.If(rolled.output > 10):
        big = say(text="big")
    with dsl.Elif(rolled.output > 5):
        medium = say(text="medium")
    with dsl.Else():
        small = say(text="small")
    return dsl.OneOf(big.output, medium.output, small.output)
