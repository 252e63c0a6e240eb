"""Per-step overhead of kfbox's executors on the same trivial work: a host process, a Docker
container and a WebAssembly module each write a short string to the step's output file.

Usage: python tests/bench/executors.py --kfbox target/release/kfbox [--repeat 7]

Needs a Docker daemon with kfbox/base:bookworm (images/base/build.sh) and the `ziglang` package
(to build the module). For each executor: the median over runs of the median task time inside a
chain of 8 steps (as kfbox records it: from the task's start to its end, so it includes every
cost kfbox adds per step) and the median wall time of the whole `kfbox run`. Baselines measured
in the same run: the same work as a bare `sh -c` and as `docker run --rm` (the Docker CLI).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

from kfp import compiler, dsl

STEPS = 8


def chain(image, command, name):
    @dsl.container_component
    def say(text: str, out: dsl.OutputPath(str)):
        return dsl.ContainerSpec(image=image, command=command, args=[text, out])

    @dsl.pipeline(name=name)
    def pipeline() -> str:
        value = say(text="ok")
        for _ in range(STEPS - 1):
            value = say(text=value.output)
        return value.output

    return pipeline


def seconds(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kfbox", required=True)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="kfbox-bench-executors-")
    home = os.path.join(workdir, "home")
    module = os.path.join(workdir, "echo.wasm")
    source = os.path.join(os.path.dirname(__file__), "..", "wasi", "echo.c")
    subprocess.run(
        [sys.executable, "-m", "ziglang", "cc", "--target=wasm32-wasi", "-O2", "-s", source, "-o", module],
        check=True,
    )
    shell = ["sh", "-c", 'printf %s "$0" > "$1"']
    cases = [
        ("process", chain("kfbox/base:bookworm", shell, "bench-process"), "process"),
        ("docker", chain("kfbox/base:bookworm", shell, "bench-docker"), "docker"),
        ("wasi", chain(f"wasm:{module}", ["echo"], "bench-wasi"), "auto"),
    ]
    results = {}
    for label, pipeline, executor in cases:
        path = os.path.join(workdir, f"{label}.yaml")
        compiler.Compiler().compile(pipeline, path)
        task_medians, walls = [], []
        for i in range(args.repeat + 1):
            start = time.perf_counter()
            out = subprocess.run(
                [args.kfbox, "run", path, "--json", "--quiet", "--no-cache", "--executor", executor],
                env={**os.environ, "KFBOX_HOME": home, "NO_COLOR": "1"},
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - start
            if out.returncode != 0:
                sys.exit(f"{label} failed:\n{out.stderr}")
            summary = json.loads(out.stdout)
            if i == 0:
                continue  # warm-up: image and module caches, page cache
            walls.append(wall)
            task_medians.append(
                statistics.median(seconds(t["finished_at"]) - seconds(t["started_at"]) for t in summary["tasks"])
            )
        results[label] = (statistics.median(task_medians), statistics.median(walls))

    def median_wall(argv):
        walls = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
        return statistics.median(walls)

    work = 'printf %s "$0" > /dev/null'
    baselines = {
        "sh -c (no kfbox)": median_wall(["sh", "-c", work, "ok"]),
        "docker run --rm (CLI)": median_wall(
            ["docker", "run", "--rm", "kfbox/base:bookworm", "sh", "-c", work, "ok"]
        ),
    }

    base = results["process"][0]
    print(f"\nper-step overhead, chain of {STEPS} trivial steps, median of {args.repeat} runs")
    print(f"{'executor':<10} {'step ms':>9} {'vs process':>11} {'run wall s':>11}")
    for label, (step, wall) in results.items():
        print(f"{label:<10} {step * 1000:>9.1f} {step / base:>10.2f}x {wall:>11.3f}")
    print("\nbaselines (median wall time of the same work, no kfbox)")
    for label, wall in baselines.items():
        print(f"{label:<24} {wall * 1000:>9.1f} ms")


if __name__ == "__main__":
    main()
