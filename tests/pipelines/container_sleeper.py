"""One container step that sleeps: for cancel and kill -9 with Docker."""
from kfp import dsl


@dsl.container_component
def nap(marker: str):
    return dsl.ContainerSpec(
        image="kfbox/base:bookworm",
        command=["sh", "-c", 'echo "napping $0"; exec sleep 300'],
        args=[marker],
    )


@dsl.pipeline(name="container-sleeper")
def pipeline(marker: str = "m"):
    nap(marker=marker)
