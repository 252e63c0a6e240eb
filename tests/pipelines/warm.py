"""Steps that tell whether they were forked from kfbox's warm worker (their parent's command
line), what the steps before them left behind, and what GPUs they see."""
from kfp import dsl


@dsl.component
def dirty() -> str:
    import json
    import os
    import threading
    import time

    import colorsys  # noqa: F401 - a module nothing else here imports

    json.kfbox_mark = 1
    os.environ["KFBOX_LEAK"] = "1"
    global LEAKED
    LEAKED = 1
    threading.Thread(target=lambda: time.sleep(600), name="kfbox-leak", daemon=True).start()
    return open(f"/proc/{os.getppid()}/cmdline").read().replace("\0", " ")


@dsl.component
def check(after: str) -> str:
    import json
    import os
    import sys
    import threading

    seen = []
    if hasattr(json, "kfbox_mark"):
        seen.append("module attribute")
    if "KFBOX_LEAK" in os.environ:
        seen.append("environment variable")
    if "LEAKED" in globals():
        seen.append("global")
    if "colorsys" in sys.modules:
        seen.append("module")
    if any(t.name == "kfbox-leak" for t in threading.enumerate()):
        seen.append("thread")
    parent = open(f"/proc/{os.getppid()}/cmdline").read().replace("\0", " ")
    return ",".join(seen) + "|" + parent


@dsl.component
def visible() -> str:
    import os

    parent = open(f"/proc/{os.getppid()}/cmdline").read().replace("\0", " ")
    return os.environ.get("CUDA_VISIBLE_DEVICES", "unset") + "|" + parent


@dsl.component
def linger(seconds: float):
    import os
    import subprocess
    import time

    subprocess.Popen(["sleep", str(seconds)])
    print("parent:", open(f"/proc/{os.getppid()}/cmdline").read().replace("\0", " "), flush=True)
    time.sleep(seconds)


@dsl.component
def linger_once(marker: str, seconds: float) -> str:
    """Lingers on its first attempt only; says which process forked it."""
    import os
    import time

    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(seconds)
    parent = open(f"/proc/{os.getppid()}/cmdline").read().replace("\0", " ")
    return f"{os.getppid()}|{parent}"


@dsl.pipeline(name="warm-isolation")
def isolation() -> str:
    return check(after=dirty().output).output


@dsl.pipeline(name="warm-gpus")
def gpus():
    with_gpu = visible().set_accelerator_type("NVIDIA_TESLA_T4").set_accelerator_limit(1)
    visible().after(with_gpu)


@dsl.pipeline(name="warm-linger")
def lingering(seconds: float = 123.45):
    linger(seconds=seconds)


@dsl.pipeline(name="warm-replaced")
def replaced(marker: str, seconds: float = 123.45) -> str:
    return (
        linger_once(marker=marker, seconds=seconds)
        .set_retry(num_retries=1, backoff_duration="0s")
        .output
    )
