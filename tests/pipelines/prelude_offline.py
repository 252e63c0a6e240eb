"""A lightweight component whose SDK prelude cannot install anything in its image: Debian's
python3 there has no pip, and the only package index given is a closed port on the container's
own loopback, as in a container without network."""
from kfp import dsl


@dsl.component(base_image="kfbox/base:bookworm", pip_index_urls=["http://127.0.0.1:9/simple"])
def hello() -> str:
    return "never"


@dsl.pipeline(name="prelude-offline")
def pipeline() -> str:
    return hello().output
