"""A container step asking for a GPU."""
from kfp import dsl


@dsl.container_component
def probe():
    return dsl.ContainerSpec(image="kfbox/base:bookworm", command=["sh", "-c", "ls /dev/nvidia*"])


@dsl.pipeline(name="gpu-container")
def pipeline():
    probe().set_gpu_limit(1)
