"""ParallelFor over ints with a Collected fan-in that must stay a list of ints."""
from typing import List

from kfp import dsl


@dsl.component
def double(x: int) -> int:
    return 2 * x


@dsl.component
def total(xs: List[int]) -> int:
    assert all(isinstance(x, int) for x in xs), f"not ints: {xs!r}"
    return sum(xs)


@dsl.pipeline(name="fan-in")
def pipeline(items: List[int] = [1, 2, 3, 4]) -> int:
    with dsl.ParallelFor(items, parallelism=2) as item:
        doubled = double(x=item)
    return total(xs=dsl.Collected(doubled.output)).output
