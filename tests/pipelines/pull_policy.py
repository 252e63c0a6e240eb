"""`kfp.kubernetes.set_image_pull_policy("Never")`: a present image runs, a missing one fails
before anything is pulled; `add_pod_label` rides along."""
from kfp import dsl, kubernetes


@dsl.container_component
def present():
    return dsl.ContainerSpec(image="kfbox/base:bookworm", command=["sh", "-c", "echo present"])


@dsl.container_component
def absent():
    return dsl.ContainerSpec(image="kfbox-test/absent:1", command=["true"])


@dsl.pipeline(name="pull-policy")
def pipeline():
    here = present()
    kubernetes.set_image_pull_policy(here, "Never")
    kubernetes.add_pod_label(here, "rehearsal", "pull-policy")
    missing = absent()
    kubernetes.set_image_pull_policy(missing, "Never")
