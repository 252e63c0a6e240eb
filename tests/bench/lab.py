"""Time from `kfbox up` to a usable JupyterLab, on a warm machine.

Usage: python tests/bench/lab.py --kfbox target/release/kfbox [--home DIR] [--repeat 7]

Warm: the home's lab environment exists (the first `kfbox up` in it installed JupyterLab;
this script does that once before measuring). Each sample spawns `kfbox up` on free ports and
times, from spawn: the API's first 200 from healthz, the `JupyterLab:` line on stdout, and the
lab's first 200 from `/api/status` with its token, and a kernel created through
`POST /api/kernels` (the websocket round trip is checked by tests/lab.rs). Baseline in the same
run: `kfbox up --no-lab` to healthz. Medians, min and max.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request

from served import free_port, healthy


def status(url, token=None):
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=1) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def start(kfbox, home, lab):
    port, lab_port = free_port(), free_port()
    args = [kfbox, "up", "--listen", f"127.0.0.1:{port}"]
    args += ["--lab-port", str(lab_port)] if lab else ["--no-lab"]
    env = dict(os.environ, KFBOX_HOME=home, NO_COLOR="1")
    began = time.perf_counter()
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    api = f"http://127.0.0.1:{port}"
    while not healthy(api):
        time.sleep(0.001)
    times = {"api": time.perf_counter() - began}
    if lab:
        for line in child.stdout:
            if "JupyterLab: " in line:
                url = line.split("JupyterLab: ", 1)[1].strip()
                break
        times["printed"] = time.perf_counter() - began
        base, token = url.split("/lab", 1)[0], url.split("token=", 1)[1]
        while status(base + "/api/status", token) != 200:
            time.sleep(0.005)
        times["lab"] = time.perf_counter() - began
        request = urllib.request.Request(base + "/api/kernels", data=b"{}", method="POST")
        request.add_header("Authorization", f"token {token}")
        with urllib.request.urlopen(request) as r:
            json.load(r)
        times["kernel"] = time.perf_counter() - began
    child.send_signal(signal.SIGINT)
    child.wait(timeout=60)
    return times


def summary(samples, key):
    values = [s[key] for s in samples]
    return f"median {statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kfbox", required=True)
    parser.add_argument("--home")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="kfbox-lab-bench-")
    print("warming up (the first start installs JupyterLab)...", flush=True)
    start(args.kfbox, home, lab=True)
    with_lab, without = [], []
    for _ in range(args.repeat):
        without.append(start(args.kfbox, home, lab=False))
        with_lab.append(start(args.kfbox, home, lab=True))
    print(f"kfbox up --no-lab, spawn to API healthy:  {summary(without, 'api')}")
    print(f"kfbox up, spawn to API healthy:           {summary(with_lab, 'api')}")
    print(f"kfbox up, spawn to 'JupyterLab:' printed: {summary(with_lab, 'printed')}")
    print(f"kfbox up, spawn to lab answering:         {summary(with_lab, 'lab')}")
    print(f"kfbox up, spawn to a kernel started:      {summary(with_lab, 'kernel')}")


if __name__ == "__main__":
    main()
