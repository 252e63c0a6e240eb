"""A newcomer's first minutes, with the OS's own Python: kfbox's installer (uv) against the
pip path kfbox used before, measured in the same run.

Usage: python tests/bench/first_start.py --kfbox target/release/kfbox [--python /usr/bin/python3] [--repeat 3]

Every sample starts from nothing (a fresh KFBOX_HOME and a fresh user home, so neither pip's
nor uv's cache helps) and downloads from the package index, so it measures the network too.
kfbox's figures:
  - README's example (`kfbox run codelabs/01-hello-pipeline/pipeline.yaml`) to SUCCEEDED;
  - `kfbox up` on another fresh home to a usable lab (its `/api/status` answers with the
    token): the SDK's and the lab's environments built first;
  - a second `kfbox up` in that home to a usable lab.
Baseline, "the pip path": what kfbox ran before, with the workaround that made it work on
Debian's Python (PIP_USE_PEP517=1): `python -m venv`, `pip wheel` into a wheel cache, then
`pip install --no-index` from it, for the SDK environment and then the lab's environment
layered on it; plus the same warm `kfbox run` and warm lab start kfbox measures, so that the
two totals compare like with like. Medians, min and max.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from served import free_port, healthy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = "codelabs/01-hello-pipeline/pipeline.yaml"
SDK = "kfp==2.17.0"
LAB = "jupyterlab==4.6.6"


def newcomer_env(home, user, python):
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": user,
        "LANG": "C.UTF-8",
        "KFBOX_HOME": home,
        "KFBOX_PYTHON": python,
        "NO_COLOR": "1",
    }
    for var in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE"):
        if var in os.environ:
            env[var] = os.environ[var]
    return env


def fresh(root):
    home = tempfile.mkdtemp(prefix="home-", dir=root)
    user = tempfile.mkdtemp(prefix="user-", dir=root)
    return home, user


def run_example(kfbox, env):
    began = time.perf_counter()
    out = subprocess.run([kfbox, "run", EXAMPLE], env=env, cwd=REPO, capture_output=True, text=True)
    took = time.perf_counter() - began
    if out.returncode != 0:
        sys.exit(f"the README example failed:\n{out.stderr}")
    return took


def lab_answers(url):
    base, token = url.split("/lab", 1)[0], url.split("token=", 1)[1]
    request = urllib.request.Request(base + "/api/status")
    request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def up_to_lab(kfbox, env):
    port, lab_port = free_port(), free_port()
    began = time.perf_counter()
    child = subprocess.Popen(
        [kfbox, "up", "--listen", f"127.0.0.1:{port}", "--lab-port", str(lab_port)],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    url = None
    for line in child.stdout:
        if line.strip().startswith("JupyterLab: http"):
            url = line.split("JupyterLab: ", 1)[1].strip()
            break
    if url is None:
        sys.exit("kfbox up printed no lab address")
    while not lab_answers(url):
        time.sleep(0.01)
    took = time.perf_counter() - began
    child.send_signal(signal.SIGINT)
    child.wait(timeout=60)
    return took


def pip_env(python, env_dir, wheels, packages, base_site, env):
    """The pip path for one environment, as kfbox ran it before (with PEP 517 builds)."""
    env = dict(env, PIP_USE_PEP517="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run([python, "-m", "venv", env_dir], env=env, check=True)
    py = os.path.join(env_dir, "bin", "python")
    if base_site:
        site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              env=env, check=True, capture_output=True, text=True).stdout.strip()
        with open(os.path.join(site, "kfbox-base.pth"), "w") as f:
            f.write(base_site + "\n")
    quiet = ["--no-input", "--progress-bar", "off", "-q"]
    subprocess.run([py, "-m", "pip", "wheel", *quiet, "--wheel-dir", wheels, "--find-links", wheels, *packages],
                   env=env, check=True, capture_output=True)
    subprocess.run([py, "-m", "pip", "install", *quiet, "--no-index", "--find-links", wheels, *packages],
                   env=env, check=True, capture_output=True)
    return subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          env=env, check=True, capture_output=True, text=True).stdout.strip()


def pip_path(python, root):
    """Seconds for the SDK environment, and for the lab's layered on it, by the pip path."""
    home, user = fresh(root)
    env = newcomer_env(home, user, python)
    wheels = os.path.join(home, "wheels")
    began = time.perf_counter()
    base_site = pip_env(python, os.path.join(home, "base"), wheels, [SDK], None, env)
    sdk = time.perf_counter() - began
    began = time.perf_counter()
    pip_env(python, os.path.join(home, "lab"), wheels, [LAB], base_site, env)
    return sdk, time.perf_counter() - began


def summary(values):
    return f"median {statistics.median(values):6.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kfbox", required=True)
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    kfbox = os.path.abspath(args.kfbox)
    root = tempfile.mkdtemp(prefix="kfbox-first-start-")
    example, first_lab, second_lab, warm_run = [], [], [], []
    pip_sdk, pip_lab = [], []
    for i in range(args.repeat):
        print(f"sample {i + 1} of {args.repeat}", flush=True)
        env = newcomer_env(*fresh(root), args.python)
        example.append(run_example(kfbox, env))
        warm_run.append(run_example(kfbox, env))
        env = newcomer_env(*fresh(root), args.python)
        first_lab.append(up_to_lab(kfbox, env))
        second_lab.append(up_to_lab(kfbox, env))
        sdk, lab = pip_path(args.python, root)
        pip_sdk.append(sdk)
        pip_lab.append(lab)
    # The pip path's totals: its environment builds plus the same warm work kfbox does after
    # building (the run itself; the lab's start), taken from this run's kfbox samples.
    run_only = statistics.median(warm_run)
    lab_start = statistics.median(second_lab)
    pip_example = [s + run_only for s in pip_sdk]
    pip_first_lab = [s + l + lab_start for s, l in zip(pip_sdk, pip_lab)]
    print(f"python: {args.python}; every sample from empty caches, online")
    print(f"README example to SUCCEEDED, fresh home   kfbox (uv): {summary(example)}")
    print(f"                                          pip path:   {summary(pip_example)}")
    print(f"kfbox up to a usable lab, fresh home      kfbox (uv): {summary(first_lab)}")
    print(f"                                          pip path:   {summary(pip_first_lab)}")
    print(f"kfbox up to a usable lab, second start    kfbox:      {summary(second_lab)}")
    print(f"environment builds alone: SDK by pip {summary(pip_sdk)}; lab by pip {summary(pip_lab)}")
    print(f"ratios (pip path / uv): README example {statistics.median(pip_example) / statistics.median(example):.1f}x, "
          f"first lab {statistics.median(pip_first_lab) / statistics.median(first_lab):.1f}x")


if __name__ == "__main__":
    main()
