"""A step asking for more GPUs than a laptop has."""
from kfp import dsl


@dsl.component
def train() -> str:
    import os

    return os.environ.get("CUDA_VISIBLE_DEVICES", "unset")


@dsl.pipeline(name="gpu-many")
def pipeline():
    train().set_gpu_limit(3)
