"""Whole numbers inside STRUCT and LIST parameters stay whole numbers, as the launcher's
protobuf JSON encoding delivers them on a cluster: `range(d['n'])` works."""
from typing import Dict, List

from kfp import dsl


@dsl.component
def count(settings: Dict, sizes: List) -> str:
    steps = list(range(settings["n"]))
    widths = [list(range(size)) for size in sizes]
    return f"{len(steps)} {settings['rate']} {[len(w) for w in widths]} {type(settings['n']).__name__}"


@dsl.container_component
def echo(settings: Dict):
    return dsl.ContainerSpec(image="python:3.11", command=["echo"], args=[settings])


@dsl.pipeline(name="struct-numbers")
def pipeline(
    settings: Dict = {"n": 3, "rate": 0.5},
    sizes: List = [2, 4],
) -> str:
    echo(settings=settings)
    return count(settings=settings, sizes=sizes).output
