"""The edit-to-result time of `kfbox run pipeline.py --watch`: a 10-step chain of lightweight
components, one of which is edited (its printed text changes); measured from the save to the
line that says that step SUCCEEDED, with the step's own time (as kfbox reports it) shown
beside it. Baseline, measured in the same run: the same edit followed by a fresh
`kfbox run pipeline.py` (a compile and a run, the cache warm), to the same line.

Usage: python tests/bench/watch.py --kfbox target/release/kfbox [--repeat 5] [--home DIR]

Medians, min and max. The home's managed environment should be warm (a first run builds it).
"""
import argparse
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

STEPS = 10
EDITED = 5

PIPELINE = '''
from kfp import dsl
{components}

@dsl.pipeline(name="watch-bench")
def chain() -> int:
    value = step_0(x=0).output
{calls}
    return value
'''

COMPONENT = '''
@dsl.component(base_image="python:3.11")
def step_{i}(x: int) -> int:
    print("step {i}: {marker}")
    return x + 1
'''


def write_pipeline(path, marker):
    components = "".join(
        COMPONENT.format(i=i, marker=marker if i == EDITED else "fixed") for i in range(STEPS)
    )
    calls = "".join(f"    value = step_{i}(x=value).output\n" for i in range(1, STEPS))
    # Through a new file renamed over the old one, as editors save.
    temporary = path + ".saving"
    with open(temporary, "w") as f:
        f.write(PIPELINE.format(components=components, calls=calls))
    os.replace(temporary, path)


DONE = re.compile(rf"SUCCEEDED\s+step-{EDITED}\s+([0-9.]+)s")


def lines_of(stream, into):
    for line in stream:
        into.put((time.perf_counter(), line))
    into.put((time.perf_counter(), None))


def wait_for_step(lines, since, limit=120):
    """Seconds from `since` to the edited step's SUCCEEDED line, and the step's own time."""
    deadline = time.perf_counter() + limit
    while True:
        at, line = lines.get(timeout=max(0.1, deadline - time.perf_counter()))
        if line is None:
            raise RuntimeError("kfbox stopped")
        match = DONE.search(line)
        if match and at >= since:
            return at - since, float(match.group(1))


def wait_for_idle(lines, limit=120):
    """Until the watch says it waits for the next change (the run before it ended)."""
    deadline = time.perf_counter() + limit
    while True:
        _, line = lines.get(timeout=max(0.1, deadline - time.perf_counter()))
        if line is None:
            raise RuntimeError("kfbox stopped")
        if line.startswith("watching "):
            return


def summary(label, samples):
    return f"{label}: median {statistics.median(samples):.2f} s (min {min(samples):.2f}, max {max(samples):.2f})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kfbox", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--home", help="KFBOX_HOME with a warm managed environment")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="kfbox-watch-bench-")
    env = dict(os.environ, KFBOX_HOME=args.home or os.path.join(work, "home"), NO_COLOR="1")
    env.pop("KFBOX_CACHE", None)
    path = os.path.join(work, "pipeline.py")
    write_pipeline(path, "warm-up")
    # The environment and the cache, made once.
    subprocess.run([args.kfbox, "run", path, "-q"], env=env, check=False, capture_output=True)

    watched, watched_work, fresh, fresh_work = [], [], [], []
    lines = queue.Queue()
    watcher = subprocess.Popen(
        [args.kfbox, "run", path, "--watch"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    threading.Thread(target=lines_of, args=(watcher.stderr, lines), daemon=True).start()
    try:
        wait_for_idle(lines)
        for n in range(args.repeat):
            saved = time.perf_counter()
            write_pipeline(path, f"watch-{n}-{time.time()}")
            took, own = wait_for_step(lines, saved)
            watched.append(took - own)
            watched_work.append(own)
            wait_for_idle(lines)
    finally:
        watcher.terminate()
        watcher.wait()

    for n in range(args.repeat):
        saved = time.perf_counter()
        write_pipeline(path, f"fresh-{n}-{time.time()}")
        out = subprocess.run([args.kfbox, "run", path], env=env, capture_output=True, text=True)
        took = time.perf_counter() - saved
        match = DONE.search(out.stderr)
        if not match:
            sys.exit(f"the fresh run did not run step-{EDITED}:\n{out.stderr}")
        # The fresh run's whole time: its result is known when it ends.
        fresh.append(took - float(match.group(1)))
        fresh_work.append(float(match.group(1)))

    print(f"{STEPS}-step chain, step-{EDITED} edited; {args.repeat} samples each; the step's own time excluded")
    print(summary("--watch, save to that step's result", watched))
    print(summary("  (the step's own time)", watched_work))
    print(summary("fresh `kfbox run pipeline.py`, save to its end", fresh))
    print(f"ratio (fresh / watch, medians): {statistics.median(fresh) / statistics.median(watched):.1f}x")


if __name__ == "__main__":
    main()
