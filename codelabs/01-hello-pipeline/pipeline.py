"""Hello, pipeline: a small pipeline that shows what kfbox runs.

Compile it with the kfp SDK (`python pipeline.py`) and run the YAML with
`kfbox run pipeline.yaml`. Steps without a dependency between them run at the same time.
"""
from typing import List

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def make_numbers(count: int) -> List[int]:
    return list(range(1, count + 1))


@dsl.component(base_image="python:3.11")
def square(x: int) -> int:
    import time

    time.sleep(0.5)  # pretend to work, so the parallelism is visible
    return x * x


@dsl.component(base_image="python:3.11")
def add_up(values: List[int]) -> int:
    return sum(values)


@dsl.component(base_image="python:3.11")
def announce(total: int, verdict: str) -> str:
    message = f"the sum of squares is {total}: {verdict}"
    print(message)
    return message


@dsl.pipeline(name="hello-pipeline", description="Squares numbers in parallel and adds them up.")
def pipeline(count: int = 5, threshold: int = 50) -> str:
    numbers = make_numbers(count=count)
    with dsl.ParallelFor(numbers.output) as n:
        squared = square(x=n)
    total = add_up(values=dsl.Collected(squared.output))
    with dsl.If(total.output > threshold):
        big = announce(total=total.output, verdict="big")
    with dsl.Else():
        small = announce(total=total.output, verdict="small")
    return dsl.OneOf(big.output, small.output)


if __name__ == "__main__":
    compiler.Compiler().compile(pipeline, "pipeline.yaml")
