"""A lightweight component whose SDK prelude installs a package no index here has: offline,
kfbox's wheelhouse must serve it inside the container; online, the closed port on the
container's own loopback stands for an index that cannot be reached."""
from kfp import dsl


@dsl.component(
    base_image="kfbox/runtime:latest",
    packages_to_install=["kfbox-offline-probe==1.0"],
    pip_index_urls=["http://127.0.0.1/simple"],
)
def probe() -> str:
    import kfbox_offline_probe

    return kfbox_offline_probe.VALUE


@dsl.pipeline(name="prelude-wheelhouse")
def pipeline() -> str:
    return probe().output
