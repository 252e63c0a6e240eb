"""kfbox run against the kfp SDK's own local runner (kfp.local) and against kfbox's cold path
(KFBOX_WARM=off: every step a fresh `sh` and `python3`), on the same pipelines, in one run.

Usage: python tests/bench/bench.py --kfbox target/release/kfbox [--repeat 3] [--quick]

All runners execute the same lightweight Python components with the same Python. Reported:
median wall time of each runner per pipeline, the ratios, and where the time of one trivial
task goes under kfbox, warm and cold. Medians of repeated runs, measured back to back, because
this machine is shared.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from kfp import compiler, dsl, local


@dsl.component(base_image="python:3.11")
def step(x: int) -> int:
    return x + 1


@dsl.component(base_image="python:3.11")
def nap(seconds: float) -> float:
    import time as t

    t.sleep(seconds)
    return seconds


@dsl.pipeline(name="chain-12")
def chain_12() -> int:
    value = step(x=0)
    for _ in range(11):
        value = step(x=value.output)
    return value.output


@dsl.pipeline(name="wide-16")
def wide_16():
    for _ in range(16):
        nap(seconds=1.0)


@dsl.pipeline(name="parallel-for-300")
def parallel_for_300():
    with dsl.ParallelFor(items=list(range(300))) as item:
        step(x=item)


@dsl.pipeline(name="one-step")
def one_step() -> int:
    return step(x=1).output


def seconds(stamp):
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_kfbox(kfbox, yaml_path, home, warm=True):
    out = subprocess.run(
        # kfp.local has no cache: every kfbox run executes every step too.
        [kfbox, "run", yaml_path, "--json", "--quiet", "--no-cache"],
        env={**os.environ, "KFBOX_HOME": home, "NO_COLOR": "1", "KFBOX_WARM": "on" if warm else "off"},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"kfbox failed on {yaml_path}:\n{out.stderr}")
    return json.loads(out.stdout)


class Silenced:
    """kfp.local logs every task to the terminal; keep the report readable."""

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = (os.dup(1), os.dup(2))
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        os.close(self.saved[0])
        os.close(self.saved[1])


def run_kfp_local(pipeline, use_venv, workdir):
    # A fresh root per run: kfp.local keeps no history to reuse anyway.
    root = tempfile.mkdtemp(dir=workdir)
    with Silenced():
        local.init(runner=local.SubprocessRunner(use_venv=use_venv), pipeline_root=root)
        pipeline()


def kfp_local_runs(pipeline, workdir):
    """Whether kfp.local can run this pipeline at all (it has no ParallelFor)."""
    try:
        run_kfp_local(pipeline, False, workdir)
        return True
    except Exception as e:  # noqa: BLE001 - what kfp.local refuses, it refuses this way
        print(f"kfp.local cannot run {pipeline.name}: {type(e).__name__}: {e}".splitlines()[0])
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kfbox", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--home", help="KFBOX_HOME with a warm managed environment")
    parser.add_argument(
        "--quick", action="store_true", help="skip kfp.local's default (venv) mode, which is very slow"
    )
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="kfbox-bench-")
    home = args.home or os.path.join(workdir, "home")
    compiled = {}
    for pipeline in (chain_12, wide_16, parallel_for_300, one_step):
        path = os.path.join(workdir, f"{pipeline.name}.yaml")
        compiler.Compiler().compile(pipeline, path)
        compiled[pipeline.name] = path
    # Warm-up: the managed environment is built once, outside the measurements.
    run_kfbox(args.kfbox, compiled["one-step"], home)

    modes = [("kfp.local use_venv=False", False)]
    if not args.quick:
        modes.insert(0, ("kfp.local default (use_venv=True)", True))
    rows = []
    for pipeline in (chain_12, wide_16, parallel_for_300):
        baselines = [("kfbox cold (KFBOX_WARM=off)", lambda w: run_kfbox(args.kfbox, compiled[pipeline.name], home, warm=False))]
        if kfp_local_runs(pipeline, workdir):
            baselines += [(mode, lambda w, v=use_venv: run_kfp_local(pipeline, v, w)) for mode, use_venv in modes]
        kfbox_times, base_times = [], {m: [] for m, _ in baselines}
        for repeat in range(args.repeat):
            kfbox_times.append(timed(lambda: run_kfbox(args.kfbox, compiled[pipeline.name], home)))
            for mode, run in baselines:
                # kfp.local takes minutes over the 300-item loop: once is enough to compare.
                if repeat and pipeline is parallel_for_300 and mode.startswith("kfp.local"):
                    continue
                base_times[mode].append(timed(lambda: run(workdir)))
        k = statistics.median(kfbox_times)
        for mode, times in base_times.items():
            m = statistics.median(times)
            rows.append((pipeline.name, mode, m, k, m / k))

    print(f"\n{'pipeline':<16} {'baseline':<34} {'baseline s':>10} {'kfbox s':>8} {'speed-up':>9}")
    for name, mode, base, kf, ratio in rows:
        print(f"{name:<16} {mode:<34} {base:>10.2f} {kf:>8.2f} {ratio:>8.1f}x")

    # Where one trivial task's time goes under kfbox.
    env_python = next(
        os.path.join(e.path, "bin", "python")
        for e in os.scandir(os.path.join(home, "python", "envs"))
        if e.is_dir() and e.name.startswith("base-")
    )
    runtime_env = {**os.environ, "_KFP_RUNTIME": "true"}

    def median_of(fn, n=7):
        return statistics.median(timed(fn) for _ in range(n))

    def one_task(warm):
        walls, steps = [], []
        for _ in range(7):
            start = time.perf_counter()
            summary = run_kfbox(args.kfbox, compiled["one-step"], home, warm=warm)
            walls.append(time.perf_counter() - start)
            task = summary["tasks"][0]
            steps.append(seconds(task["finished_at"]) - seconds(task["started_at"]))
        return statistics.median(walls), statistics.median(steps)

    warm_wall, warm_step = one_task(True)
    wall, step_time = one_task(False)
    # What one more trivial task costs: a 12-step chain against one step, per added step.
    chain_warm = statistics.median(timed(lambda: run_kfbox(args.kfbox, compiled["chain-12"], home)) for _ in range(7))
    chain_cold = statistics.median(
        timed(lambda: run_kfbox(args.kfbox, compiled["chain-12"], home, warm=False)) for _ in range(7)
    )
    print(f"\neach further trivial task (12-step chain less one step, per step, medians of 7):")
    print(f"  forked from a warm worker {(chain_warm - warm_wall) / 11 * 1000:.0f} ms, cold {(chain_cold - wall) / 11 * 1000:.0f} ms")
    shell = median_of(lambda: subprocess.run(["sh", "-c", 'd=$(mktemp -d); rmdir "$d"'], check=True))
    interp = median_of(lambda: subprocess.run([env_python, "-c", "pass"], check=True))
    sdk = median_of(
        lambda: subprocess.run(
            [env_python, "-c", "import kfp.dsl.executor_main"], check=True, env=runtime_env
        )
    )
    print(f"\none trivial task (median of 7), forked from a warm worker: kfbox run wall time {warm_wall:.3f} s")
    print(f"  the step, as kfbox records it                {warm_step:.3f} s")
    print(f"\none trivial task (median of 7), cold (KFBOX_WARM=off): kfbox run wall time {wall:.3f} s")
    print(f"  kfbox itself (start, parse, plan, summary)   {wall - step_time:.3f} s")
    print(f"  the step, as kfbox records it                {step_time:.3f} s, of which:")
    print(f"    sh + mktemp (the SDK's wrapper script)     {shell:.3f} s")
    print(f"    python start-up                            {interp:.3f} s")
    print(f"    import of the SDK executor (runtime mode)  {sdk - interp:.3f} s")
    print(f"    the rest (component, output files)         {max(step_time - shell - sdk, 0):.3f} s")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
