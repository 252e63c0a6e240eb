"""One step that announces itself and then sleeps: for kill -9 and `kfbox logs --follow`."""
from kfp import dsl


@dsl.component
def nap(marker: str, seconds: int):
    import time

    print(f"napping {marker}", flush=True)
    time.sleep(seconds)


@dsl.pipeline(name="sleeper")
def pipeline(marker: str = "m", seconds: int = 60):
    nap(marker=marker, seconds=seconds)
