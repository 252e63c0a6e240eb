"""One container step that writes an artifact and reports who it ran as."""
from kfp import dsl


@dsl.container_component
def write(data: dsl.Output[dsl.Dataset], uid: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="kfbox/base:bookworm",
        command=["sh", "-c", 'echo written > "$0"; id -u > "$1"'],
        args=[data.path, uid],
    )


@dsl.pipeline(name="container-writer")
def pipeline() -> str:
    return write().outputs["uid"]
