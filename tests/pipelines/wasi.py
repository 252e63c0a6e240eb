"""WebAssembly steps (`wasm:` images, resolved beside the compiled pipeline file) between
process steps: an artifact in, a parameter and an artifact out."""
from kfp import dsl


@dsl.component
def lines(n: int, data: dsl.Output[dsl.Dataset]):
    with open(data.path, "w") as f:
        f.write("".join(f"{i}\n" for i in range(n)))


@dsl.container_component
def count(data: dsl.Input[dsl.Dataset], total: dsl.OutputPath(int), report: dsl.Output[dsl.Artifact]):
    return dsl.ContainerSpec(
        image="wasm:count.wasm",
        command=["count"],
        args=[data.path, total, report.path],
    )


@dsl.component
def double(total: int) -> int:
    return total * 2


@dsl.pipeline(name="wasi")
def pipeline(n: int = 7) -> int:
    counted = count(data=lines(n=n).outputs["data"])
    counted.set_env_variable("GREETING", "hello from wasm")
    return double(total=counted.outputs["total"]).output
