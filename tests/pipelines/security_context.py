"""`kfp.kubernetes.set_security_context`: containers run as the user and group it names; a step
written by one such user is read by a step running as another; a step that must not run as
root and would is not started."""
from kfp import dsl, kubernetes

BASE = "kfbox/base:bookworm"


@dsl.container_component
def whoami(who: dsl.OutputPath(str), rows: dsl.Output[dsl.Dataset]):
    return dsl.ContainerSpec(
        image=BASE,
        command=["sh", "-c", 'echo "$(id -u):$(id -g)" > "$0"; echo "1 2 3" > "$1"'],
        args=[who, rows.path],
    )


@dsl.container_component
def read_back(rows: dsl.Input[dsl.Dataset], seen: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image=BASE,
        command=["sh", "-c", 'echo "$(id -u) read $(cat "$0")" > "$1"'],
        args=[rows.path, seen],
    )


@dsl.container_component
def not_root():
    return dsl.ContainerSpec(image=BASE, command=["sh", "-c", "id -u"])


@dsl.pipeline(name="security-context")
def pipeline():
    first = whoami()
    kubernetes.set_security_context(first, run_as_user=1234, run_as_group=2345)
    second = read_back(rows=first.outputs["rows"])
    kubernetes.set_security_context(second, run_as_user=4321, run_as_non_root=True)
    third = not_root().after(second)
    kubernetes.set_security_context(third, run_as_non_root=True)
