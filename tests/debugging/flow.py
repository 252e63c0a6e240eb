"""A pipeline file run as it is (`kfbox run flow.py`): a component that imports a local module,
one that fails in the user's own code, a shell step that fails, and a second pipeline."""
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
def shell(code: int):
    return dsl.ContainerSpec(
        image="kfbox/base:bookworm",
        command=["sh", "-c", 'echo "to stdout"; echo "cat: /nope: No such file or directory" >&2; exit "$0"'],
        args=[code],
    )


@dsl.pipeline(name="train-flow")
def train_flow(n: int = 3, rate: float = helpers.RATE) -> float:
    prepared = prepare(n=n)
    return train(rate=rate).after(prepared).output


@dsl.pipeline(name="shell-flow")
def shell_flow(code: int = 3):
    shell(code=code)
