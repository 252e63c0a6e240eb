"""kfbox's own cost per task as pipelines grow: chains of 1,000, 10,000 and 30,000 shell steps
and a ParallelFor of 5,000 iterations, run as host processes.

Usage: python tests/bench/scale.py --kfbox target/release/kfbox [--repeat 3] [--sizes 1000,10000,30000]

The pipelines are what the kfp SDK writes for such a chain: a three-step chain is compiled by
the real SDK and its second step's component, executor and task are repeated (the SDK itself
takes minutes to compile 10,000 tasks, quadratically). Reported per size: the median wall time
of `kfbox run`, kfbox's time per task (wall time less the same number of bare `sh -c` runs,
measured in the same run, over the number of tasks), the peak memory of the kfbox process, and
the ratio to the smallest size's per-task time: a scheduler that stays linear keeps it near 1.
"""
import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import yaml
from kfp import compiler, dsl

IMAGE = "kfbox/base:bookworm"
SHELL = ["sh", "-c", 'printf %s "$0" > "$1"']


@dsl.container_component
def say(text: str, out: dsl.OutputPath(str)):
    return dsl.ContainerSpec(image=IMAGE, command=SHELL, args=[text, out])


@dsl.pipeline(name="scale-chain")
def chain_3() -> str:
    first = say(text="x")
    second = say(text=first.output)
    return say(text=second.output).output


@dsl.pipeline(name="scale-loop")
def loop(items: list):
    with dsl.ParallelFor(items) as item:
        say(text=item)


def chain_of(template, n):
    """The SDK's three-step chain grown to n steps, each with its own component and executor
    as the SDK writes them."""
    spec = copy.deepcopy(template)
    component = spec["components"]["comp-say-2"]
    executor = spec["deploymentSpec"]["executors"]["exec-say-2"]
    task = spec["root"]["dag"]["tasks"]["say-2"]
    components = {"comp-say": spec["components"]["comp-say"]}
    executors = {"exec-say": spec["deploymentSpec"]["executors"]["exec-say"]}
    tasks = {"say": spec["root"]["dag"]["tasks"]["say"]}
    previous = "say"
    for i in range(2, n + 1):
        name = f"say-{i}"
        components[f"comp-{name}"] = dict(component, executorLabel=f"exec-{name}")
        executors[f"exec-{name}"] = executor
        step = copy.deepcopy(task)
        step["componentRef"]["name"] = f"comp-{name}"
        step["dependentTasks"] = [previous]
        step["inputs"]["parameters"]["text"]["taskOutputParameter"]["producerTask"] = previous
        step["taskInfo"]["name"] = name
        tasks[name] = step
        previous = name
    spec["components"] = components
    spec["deploymentSpec"]["executors"] = executors
    spec["root"]["dag"]["tasks"] = tasks
    spec["root"]["dag"]["outputs"]["parameters"]["Output"]["valueFromParameter"]["producerSubtask"] = previous
    return spec


def peak_mib(pid, done):
    """The process's high-water resident memory (VmHWM), read until it ends: wait4's ru_maxrss
    would start from this Python's own, which a child inherits across exec."""
    peak = 0
    while not done.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            break
        done.wait(0.05)
    return peak


def run_kfbox(kfbox, path, home, extra=("--no-cache",)):
    """Wall seconds, peak resident MiB and tasks of one `kfbox run` (without the cache unless
    `extra` leaves `--no-cache` out)."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(
            [kfbox, "run", path, "--json", "--quiet", "--executor", "process", *extra],
            env={**os.environ, "KFBOX_HOME": home, "NO_COLOR": "1"},
            stdout=stdout,
            stderr=stderr,
        )
        done = threading.Event()
        peak = []
        watcher = threading.Thread(target=lambda: peak.append(peak_mib(process.pid, done)))
        watcher.start()
        process.wait()
        wall = time.perf_counter() - start
        done.set()
        watcher.join()
        stdout.seek(0)
        stderr.seek(0)
        if process.returncode != 0:
            sys.exit(f"kfbox failed on {path}:\n{stderr.read().decode()[-3000:]}")
        summary = json.loads(stdout.read())
    if summary["state"] != "SUCCEEDED":
        sys.exit(f"{path} ended {summary['state']}: {summary.get('error')}")
    return wall, peak[0], len(summary["tasks"])


def sh_seconds(repeat):
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(SHELL + ["ok", "/dev/null"], check=True)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kfbox", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,30000")
    parser.add_argument("--loop", type=int, default=5000)
    parser.add_argument(
        "--cached", type=int, default=10000,
        help="a chain of this many equal steps with the cache on, in a fresh home: one runs, "
        "the rest are cache hits (0: skip)",
    )
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="kfbox-bench-scale-")
    home = os.path.join(workdir, "home")
    compiled = os.path.join(workdir, "chain-3.yaml")
    compiler.Compiler().compile(chain_3, compiled)
    with open(compiled) as f:
        template = yaml.safe_load(f)
    loop_path = os.path.join(workdir, "loop.yaml")
    compiler.Compiler().compile(loop, loop_path)

    # Warm-up: the home, the page cache.
    run_kfbox(args.kfbox, compiled, home)
    sh = sh_seconds(51)
    def chain_file(n):
        """The chain of n steps as a file, written the first time it is asked for."""
        path = os.path.join(workdir, f"chain-{n}.yaml")
        if not os.path.exists(path):
            with open(path, "w") as f:
                yaml.safe_dump(chain_of(template, n), f, sort_keys=False)
        return path

    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        path = chain_file(n)
        samples = [run_kfbox(args.kfbox, path, home) for _ in range(args.repeat)]
        rows.append((f"chain of {n}", n, samples))
    if args.loop:
        items = json.dumps(list(range(args.loop)))
        samples = [
            run_kfbox(args.kfbox, loop_path, home, ["--no-cache", "--param", f"items={items}"])
            for _ in range(args.repeat)
        ]
        rows.append((f"loop of {args.loop}", args.loop, samples))
    cached = []
    if args.cached:
        path = chain_file(args.cached)
        for i in range(args.repeat):
            cached.append(run_kfbox(args.kfbox, path, os.path.join(workdir, f"cached-{i}"), []))

    print(f"\nmedian of {args.repeat} runs; bare `sh -c` {sh * 1000:.2f} ms (median of 51)")
    print(f"{'pipeline':<16} {'tasks':>7} {'wall s':>8} {'kfbox ms/task':>14} {'vs first':>9} {'peak MiB':>9}")
    first = None
    for label, n, samples in rows:
        wall = statistics.median(s[0] for s in samples)
        peak = max(s[1] for s in samples)
        per_task = max(wall - n * sh, 0) / n * 1000
        first = first or per_task
        print(f"{label:<16} {samples[0][2]:>7} {wall:>8.2f} {per_task:>14.2f} {per_task / first:>8.2f}x {peak:>9.0f}")
    if cached:
        wall = statistics.median(s[0] for s in cached)
        print(
            f"chain of {args.cached} equal steps, cache on (one runs, the rest are hits): "
            f"{wall:.2f} s, {wall / args.cached * 1000:.2f} ms/task, peak {max(s[1] for s in cached):.0f} MiB"
        )


if __name__ == "__main__":
    main()
