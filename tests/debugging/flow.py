"""A pipeline file run as it is (`kfbox run flow.py`): a component that imports a local module,
one that fails in the user's own code, a shell step that fails, and pipelines of each; one that
passes a dataset to a step that fails on it."""
from kfp import dsl

import helpers


@dsl.component
def prepare(n: int) -> int:
    print("preparing", n)
    return n * 2


@dsl.component
def train(rate: float) -> float:
    print("training at", rate)
    steps = int(rate * 10) - 5
    return 1 / steps  # FAILS-HERE when rate is 0.5


@dsl.container_component
def shell(code: int, said: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="kfbox/base:bookworm",
        command=[
            "sh",
            "-c",
            'echo "to stdout"; printf "code %s" "$0" > "$1"; '
            'echo "cat: /nope: No such file or directory" >&2; exit "$0"',
        ],
        args=[code, said],
    )


@dsl.component
def make_rows(n: int, rows: dsl.Output[dsl.Dataset]):
    with open(rows.path, "w") as f:
        f.write("\n".join(str(i) for i in range(n)))
    rows.metadata["count"] = n


@dsl.component
def mean_of(rows: dsl.Input[dsl.Dataset], skip: int) -> float:
    with open(rows.path) as f:
        values = [int(line) for line in f.read().split()][skip:]
    return sum(values) / len(values)  # FAILS-HERE-TOO when skip is n or more


@dsl.pipeline(name="train-flow")
def train_flow(n: int = 3, rate: float = helpers.RATE) -> float:
    prepared = prepare(n=n)
    return train(rate=rate).after(prepared).output


@dsl.pipeline(name="shell-flow")
def shell_flow(code: int = 3):
    shell(code=code)


@dsl.pipeline(name="rows-flow")
def rows_flow(n: int = 3, skip: int = 3) -> float:
    rows = make_rows(n=n)
    return mean_of(rows=rows.outputs["rows"], skip=skip).output
