"""Independent steps that each wait: they must run at the same time."""
from kfp import dsl


@dsl.component
def nap(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


@dsl.pipeline(name="parallel")
def pipeline(seconds: float = 1.0):
    for _ in range(4):
        nap(seconds=seconds)
