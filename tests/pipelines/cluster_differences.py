"""One of each thing a cluster does differently: a packages_to_install component, one compiled
without the kfp install, a `:latest` image, a `wasm:` step, an importer of a local path. (The
corpus has the Kubernetes settings.)"""
from kfp import dsl


@dsl.component(packages_to_install=["six==1.16.0"])
def with_packages() -> str:
    return "six"


@dsl.component(install_kfp_package=False, base_image="python:3.11")
def without_install() -> str:
    return "none"


@dsl.container_component
def latest_image():
    return dsl.ContainerSpec(image="alpine:latest", command=["true"])


@dsl.container_component
def pinned_image():
    return dsl.ContainerSpec(image="alpine:3.20", command=["true"])


@dsl.container_component
def wasm_step():
    return dsl.ContainerSpec(image="wasm:steps/hello.wasm", command=["hello"])


@dsl.pipeline(name="cluster-differences")
def pipeline():
    with_packages()
    without_install()
    latest_image()
    pinned_image()
    wasm_step()
    dsl.importer(artifact_uri="/data/local.csv", artifact_class=dsl.Dataset, reimport=False)
