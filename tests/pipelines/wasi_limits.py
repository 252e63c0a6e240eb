"""WebAssembly steps that misbehave: one reads outside its directories, one never ends, one
allocates without end under a 32 MiB limit."""
from kfp import dsl


@dsl.component
def lines(data: dsl.Output[dsl.Dataset]):
    with open(data.path, "w") as f:
        f.write("a\n")


@dsl.container_component
def escape(data: dsl.Input[dsl.Dataset], planted: dsl.Output[dsl.Artifact]):
    return dsl.ContainerSpec(
        image="wasm:escape.wasm",
        command=["escape"],
        args=[data.path, planted.path],
    )


@dsl.container_component
def spin():
    return dsl.ContainerSpec(image="wasm:spin.wasm", command=["spin"])


@dsl.container_component
def hog():
    return dsl.ContainerSpec(image="wasm:hog.wasm", command=["hog"])


@dsl.pipeline(name="wasi-limits")
def pipeline():
    escape(data=lines().outputs["data"])
    spin()
    hog().set_memory_limit("32Mi")
