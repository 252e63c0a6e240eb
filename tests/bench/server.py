"""`kfbox up`: cold start to a healthy API, and the API under load.

Usage: python tests/bench/server.py --kfbox target/release/kfbox [--repeat 15] [--runs 50]

Start: a fresh `kfbox up` process on a home whose store and Python environment exist (the
state after first use), timed from spawn to the first 200 from `/apis/v2beta1/healthz`
(polled every millisecond), median of `--repeat`. Baseline in the same run: `kfbox --version`
spawned and waited for (a process that does nothing).

Load: `--runs` runs of a two-step pipeline submitted at once through `kfp.Client` (one client
per thread, caching off), timed until all have ended; `list_runs` (page of 20, newest first)
timed while they run, against the same call on the idle server afterwards.
"""
import argparse
import concurrent.futures
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time

import kfp
from kfp import compiler, dsl

from served import free_port, healthy


def start(kfbox, home):
    """(process, url, seconds from spawn to healthy)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    began = time.perf_counter()
    process = subprocess.Popen([kfbox, "up", "--listen", f"127.0.0.1:{port}"],
                               env={**os.environ, "KFBOX_HOME": home, "NO_COLOR": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not healthy(url):
        if process.poll() is not None:
            raise SystemExit(f"kfbox up exited with {process.returncode}")
        time.sleep(0.001)
    return process, url, time.perf_counter() - began


def stop(process):
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


@dsl.component(base_image="python:3.11")
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline(name="bench-load")
def adder(x: int = 1) -> int:
    return add(a=add(a=x, b=1).output, b=2).output


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kfbox", required=True)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    kfbox = os.path.abspath(args.kfbox)
    home = tempfile.mkdtemp(prefix="kfbox-bench-server-")
    work = tempfile.mkdtemp(prefix="kfbox-bench-pipelines-")
    package = os.path.join(work, "adder.yaml")
    compiler.Compiler().compile(adder, package)

    # First use: the store and the Python environment get made (not timed).
    process, url, _ = start(kfbox, home)
    client = kfp.Client(host=url)
    run = client.create_run_from_pipeline_package(package, enable_caching=False)
    client.wait_for_run_completion(run.run_id, timeout=900, sleep_duration=0.2)
    stop(process)

    starts, versions = [], []
    for _ in range(args.repeat):
        process, _, took = start(kfbox, home)
        starts.append(took)
        stop(process)
        began = time.perf_counter()
        subprocess.run([kfbox, "--version"], check=True, stdout=subprocess.DEVNULL)
        versions.append(time.perf_counter() - began)

    process, url, _ = start(kfbox, home)
    client = kfp.Client(host=url)
    experiment = client.create_experiment(f"bench-{os.getpid()}")

    def submit(i):
        return kfp.Client(host=url).run_pipeline(
            experiment.experiment_id, f"load-{i}", pipeline_package_path=package,
            params={"x": i}, enable_caching=False).run_id

    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.runs) as pool:
        ids = list(pool.map(submit, range(args.runs)))
    submitted = time.perf_counter() - began
    busy = []
    while True:
        t = time.perf_counter()
        client.list_runs(experiment_id=experiment.experiment_id, page_size=20, sort_by="created_at desc")
        busy.append(time.perf_counter() - t)
        states = [client.get_run(i).state for i in ids]
        if all(s in ("SUCCEEDED", "FAILED", "CANCELED") for s in states):
            break
        time.sleep(0.1)
    all_done = time.perf_counter() - began
    idle = []
    for _ in range(20):
        t = time.perf_counter()
        client.list_runs(experiment_id=experiment.experiment_id, page_size=20, sort_by="created_at desc")
        idle.append(time.perf_counter() - t)
    stop(process)

    ms = lambda values: round(statistics.median(values) * 1000, 1)
    report = {
        "cold_start_to_healthz_ms": {"median": ms(starts), "min": round(min(starts) * 1000, 1),
                                     "max": round(max(starts) * 1000, 1)},
        "kfbox_version_ms": {"median": ms(versions)},
        "load": {
            "runs": args.runs,
            "succeeded": states.count("SUCCEEDED"),
            "submit_all_s": round(submitted, 2),
            "all_ended_s": round(all_done, 2),
            "list_runs_busy_ms": {"median": ms(busy), "max": round(max(busy) * 1000, 1), "samples": len(busy)},
            "list_runs_idle_ms": {"median": ms(idle)},
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
