"""Lightweight Python components in kfbox's runtime image, run with `--executor docker`."""
from kfp import dsl

RUNTIME = "kfbox/runtime:latest"


@dsl.component(base_image=RUNTIME)
def make(n: int, data: dsl.Output[dsl.Dataset]):
    with open(data.path, "w") as f:
        f.write("\n".join(str(i) for i in range(n)))
    # In a container the step's own command is process 1.
    with open("/proc/1/cmdline") as f:
        print("in a container:", "executor_main" in f.read())


@dsl.component(base_image=RUNTIME)
def count(data: dsl.Input[dsl.Dataset]) -> int:
    with open(data.path) as f:
        return len(f.read().split())


@dsl.pipeline(name="runtime-image")
def pipeline(n: int = 5) -> int:
    return count(data=make(n=n).outputs["data"]).output
