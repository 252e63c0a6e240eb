"""`set_cpu_limit` and `set_memory_limit` hold for host processes as for containers: a busy
step limited to a quarter of a core gets about that much CPU time, then a step that holds more
memory than its limit is killed as a cluster's OOM killer would (OOMKilled)."""
from kfp import dsl

BASE = "kfbox/base:bookworm"


@dsl.component
def spin(seconds: float) -> float:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return time.process_time()


@dsl.container_component
def hog(megabytes: int):
    # The shell keeps the whole substitution in its memory, then holds it while it sleeps.
    return dsl.ContainerSpec(
        image=BASE,
        command=["sh", "-c", 'x=$(head -c "${0}000000" /dev/zero | tr "\\0" a); echo "held it"; sleep 5'],
        args=[megabytes],
    )


@dsl.pipeline(name="limits")
def pipeline(seconds: float = 3.0, megabytes: int = 200) -> float:
    spun = spin(seconds=seconds).set_cpu_limit("250m").set_memory_limit("512Mi")
    spun.set_caching_options(False)
    hog(megabytes=megabytes).set_memory_limit("64Mi").after(spun)
    return spun.output
