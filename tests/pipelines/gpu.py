"""Steps asking for GPUs, and one asking for none: each reports what it was given and when."""
from kfp import dsl


@dsl.component
def hold(tag: str) -> str:
    import os
    import time

    start = time.time()
    time.sleep(1.0)
    return f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}|{start}|{time.time()}"


@dsl.pipeline(name="gpu-slots")
def pipeline():
    for i in range(3):
        hold(tag=f"one-{i}").set_gpu_limit(1)
    hold(tag="pair").set_accelerator_type("NVIDIA_TESLA_T4").set_accelerator_limit(2)
    hold(tag="none")
