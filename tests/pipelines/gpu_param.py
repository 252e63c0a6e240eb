"""A GPU count given by a pipeline parameter: the step gets that many GPUs when it starts, as
the driver resolves the placeholder on a cluster."""
from kfp import dsl

from gpu import hold


@dsl.pipeline(name="gpu-param")
def pipeline(count: int = 1):
    hold(tag="counted").set_accelerator_type("NVIDIA_TESLA_T4").set_accelerator_limit(count)
