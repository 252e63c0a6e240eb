"""A container step whose image no machine here has, nor can pull."""
from kfp import dsl


@dsl.container_component
def absent():
    return dsl.ContainerSpec(image="kfbox-test/absent-image:1", command=["true"])


@dsl.pipeline(name="missing-image")
def pipeline():
    absent()
