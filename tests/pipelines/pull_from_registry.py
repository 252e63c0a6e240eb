"""`kfp.kubernetes.set_image_pull_policy` against a registry: the same image reference twice,
first `IfNotPresent` (the copy that is here runs), then `Always` (the registry's newer image
under the same tag is pulled and runs). The test serves the registry on loopback and writes
its address over `localhost:5000`."""
from kfp import dsl, kubernetes


@dsl.container_component
def version():
    return dsl.ContainerSpec(
        image="localhost:5000/kfbox-test/pulled:1", command=["cat", "/version"]
    )


@dsl.pipeline(name="pull-from-registry")
def pipeline():
    kept = version().set_caching_options(False)
    kubernetes.set_image_pull_policy(kept, "IfNotPresent")
    pulled = version().after(kept).set_caching_options(False)
    kubernetes.set_image_pull_policy(pulled, "Always")
