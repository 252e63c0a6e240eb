"""Caching options: a custom cache key (inputs then do not matter) and caching turned off."""
from kfp import dsl


@dsl.component
def stamp(n: int) -> str:
    import uuid

    return f"{n}-{uuid.uuid4()}"


@dsl.pipeline(name="cache-key")
def pipeline(n: int = 1):
    stamp(n=n).set_caching_options(True, cache_key="model-v1").set_display_name("keyed")
    stamp(n=n).set_caching_options(False).set_display_name("uncached")
