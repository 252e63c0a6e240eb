"""Container steps in Docker beside a lightweight Python step run as a process, passing artifacts
both ways; placeholders, a memory limit and the container's view of itself in the logs."""
from typing import Optional

from kfp import dsl

BASE = "kfbox/base:bookworm"


@dsl.container_component
def shout(
    text: str,
    out: dsl.OutputPath(str),
    rows: dsl.Output[dsl.Dataset],
    suffix: Optional[str] = None,
):
    return dsl.ContainerSpec(
        image=BASE,
        command=[
            "sh",
            "-c",
            'printf "%s" "$0" > "$1"; printf "n\\n1\\n2\\n3\\n" > "$2"; '
            '[ $$ = 1 ] && echo "in a container as uid $(id -u)"; '
            'echo "memory limit $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"',
        ],
        args=[
            dsl.ConcatPlaceholder(
                ["<", text, dsl.IfPresentPlaceholder(input_name="suffix", then=suffix, else_="."), ">"]
            ),
            out,
            rows.path,
        ],
    )


@dsl.component
def total(rows: dsl.Input[dsl.Dataset], summary: dsl.Output[dsl.Dataset]) -> int:
    with open(rows.path) as f:
        values = [int(line) for line in f.read().split()[1:]]
    with open(summary.path, "w") as f:
        f.write(f"sum={sum(values)}\n")
    # In a container the step's own command is process 1.
    with open("/proc/1/cmdline") as f:
        print("in a container:", "executor_main" in f.read())
    return sum(values)


@dsl.container_component
def echo_back(summary: dsl.Input[dsl.Dataset], copy: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image=BASE,
        command=["sh", "-c", 'cat "$0" > "$1"; [ $$ = 1 ] && echo "read it in a container"'],
        args=[summary.path, copy],
    )


@dsl.pipeline(name="docker-mix")
def pipeline(text: str = "kfbox") -> str:
    first = shout(text=text).set_memory_limit("256Mi").set_cpu_limit("1")
    second = shout(text=text, suffix="!")
    counted = total(rows=first.outputs["rows"])
    back = echo_back(summary=counted.outputs["summary"])
    back.after(second)
    return back.outputs["copy"]
