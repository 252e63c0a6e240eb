"""Container components with IfPresent and Concat placeholders, run on the host shell."""
from typing import Optional

from kfp import dsl


@dsl.container_component
def greet(name: str, out: dsl.OutputPath(str), greeting: Optional[str] = None):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", 'printf "%s" "$0" > "$1"'],
        args=[
            dsl.ConcatPlaceholder(
                [dsl.IfPresentPlaceholder(input_name="greeting", then=greeting, else_="hello"), " ", name]
            ),
            out,
        ],
    )


@dsl.pipeline(name="containers")
def pipeline(name: str = "kfbox") -> str:
    plain = greet(name=name)
    custom = greet(name=plain.outputs["out"], greeting="hi")
    return custom.outputs["out"]
