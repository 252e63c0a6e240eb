"""A pipeline inside a pipeline, with inputs and outputs crossing the boundary."""
from kfp import dsl


@dsl.component
def add(a: float, b: float) -> float:
    return a + b


@dsl.pipeline(name="inner")
def inner(x: float, y: float = 1.5) -> float:
    return add(a=x, b=y).output


@dsl.pipeline(name="nested")
def pipeline(start: float = 2.0) -> float:
    first = inner(x=start)
    second = inner(x=first.output, y=10.0)
    return second.output
