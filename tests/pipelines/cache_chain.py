"""A chain for caching: source -> double -> report (an artifact) -> consume, and a side step.

The tests edit `double`'s code in the compiled YAML (`x * 2` to `x * 3`) to change one step.
"""
from kfp import dsl
from kfp.dsl import Dataset, Input, Output


@dsl.component
def source(n: int) -> int:
    print("source ran")
    return n + 1


@dsl.component
def double(x: int) -> int:
    print("double ran")
    return x * 2


@dsl.component
def report(x: int, data: Output[Dataset]):
    print("report ran")
    with open(data.path, "w") as f:
        f.write(f"value={x}\n")
    data.metadata["value"] = x


@dsl.component
def consume(data: Input[Dataset]) -> str:
    print("consume ran")
    return open(data.path).read().strip()


@dsl.component
def side(n: int) -> str:
    print("side ran")
    return f"side-{n}"


@dsl.pipeline(name="cache-chain")
def pipeline(n: int = 4) -> str:
    doubled = double(x=source(n=n).output)
    produced = report(x=doubled.output)
    side(n=n)
    return consume(data=produced.outputs["data"]).output
