"""The web UI: first paint of a run's page with a 200-step graph and with a loop of 5,000
iterations, and of the runs list with 100,000 runs.

Usage: python tests/bench/ui.py --kfbox target/release/kfbox [--chromium /usr/bin/chromium]
       [--repeat 9] [--runs 100000] [--screenshots DIR]

A `kfbox up` on a fresh home runs two pipelines to the end: `wide`, 200 container steps in 20
layers of 10 (each step waits for two of the layer before it), `loop`, a ParallelFor of
5,000 iterations of one step (its page paints the loop collapsed, counted by state; the size
of its graph's JSON is reported beside the baseline's), and `pair`, 2 steps (the baseline). Then, for each, `--repeat` times, a fresh headless Chromium context (nothing
cached) opens `#/runs/details/{id}` and the time is taken from navigation start to the frame
after every step node of the graph is in the page (`performance.now()` after two animation
frames); the graph's layout alone is reported beside it (the UI's `kfbox:graph-layout`
performance measure). Medians, with min and max.

Runs list: the time from navigation to the first page of 20 rows painted, and from pressing
Next to the next page painted (five pages deep), first with the 2 runs above, then after
`--runs` list rows were added straight into the store (the server stopped meanwhile; rows
that list but have no tasks, as a long history would).
"""
import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.request

import kfp
from kfp import compiler, dsl
from playwright.sync_api import sync_playwright

from served import free_port, healthy

LAYERS, WIDTH = 20, 10
ITERATIONS = 5000


@dsl.container_component
def echo(message: str):
    return dsl.ContainerSpec(image="alpine:3", command=["echo"], args=[message])


@dsl.pipeline(name="bench-wide")
def wide():
    layer = [echo(message=f"0-{i}") for i in range(WIDTH)]
    for depth in range(1, LAYERS):
        layer = [
            echo(message=f"{depth}-{i}").after(layer[i], layer[(i + 1) % WIDTH])
            for i in range(WIDTH)
        ]


@dsl.pipeline(name="bench-loop")
def loop():
    with dsl.ParallelFor(items=[str(i) for i in range(ITERATIONS)]) as item:
        echo(message=item)


@dsl.pipeline(name="bench-pair")
def pair():
    echo(message="b").after(echo(message="a"))


def run_to_end(client, pipeline, work):
    package = os.path.join(work, f"{pipeline.name}.yaml")
    compiler.Compiler().compile(pipeline, package)
    run = client.create_run_from_pipeline_package(package, enable_caching=False)
    done = client.wait_for_run_completion(run.run_id, timeout=1800, sleep_duration=0.5)
    assert done.state == "SUCCEEDED", done.state
    return run.run_id


PAINTED = """async (count) => {
  while (document.querySelectorAll('.dag [data-node-id]').length < count)
    await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const layout = performance.getEntriesByName('kfbox:graph-layout')[0];
  return [performance.now(), layout ? layout.duration : null];
}"""


def first_paint(browser, url, run_id, steps, screenshot=None):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"{url}/#/runs/details/{run_id}")
    took, layout = page.evaluate(PAINTED, steps)
    if screenshot:
        # After the polished layout replaced the quick one.
        page.wait_for_timeout(3000)
        page.screenshot(path=screenshot)
    context.close()
    assert not errors, errors
    return took, layout


LISTED = """async (previous) => {
  const first = () => document.querySelector('tr[data-run-id]')?.getAttribute('data-run-id');
  while (!first() || first() === previous) await new Promise((r) => setTimeout(r, 2));
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [performance.now(), first()];
}"""


def runs_list(browser, url, pages):
    """(ms to the first page painted, [ms from Next to each next page painted])."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{url}/#/runs")
    took, first = page.evaluate(LISTED, None)
    turns = []
    for _ in range(pages):
        began = page.evaluate("performance.now()")
        page.get_by_role("button", name="Next →").click()
        ended, first = page.evaluate(LISTED, first)
        turns.append(ended - began)
    context.close()
    return took, turns


def add_listed_runs(home, count):
    """`count` runs that list (kfbox_run and its API row), newest last, in one transaction."""
    db = sqlite3.connect(os.path.join(home, "kfbox.sqlite"))
    context_id, experiment = db.execute(
        "SELECT r.context_id, a.experiment_id FROM kfbox_run r JOIN kfbox_api_run a USING (run_id) LIMIT 1"
    ).fetchone()
    base = int(time.time() * 1000) - count * 1000
    with db:
        db.executemany(
            "INSERT INTO kfbox_run (run_id, context_id, display_name, pipeline_name, state, created_at,"
            " finished_at, run_dir) VALUES (?, ?, ?, 'listed', 'SUCCEEDED', ?, ?, '/nonexistent')",
            ((f"listed-{i:06d}", context_id, f"listed run {i}", base + i * 1000, base + i * 1000 + 500)
             for i in range(count)))
        db.executemany(
            "INSERT INTO kfbox_api_run (run_id, experiment_id, pipeline_spec, created_at) VALUES (?, ?, '', ?)",
            ((f"listed-{i:06d}", experiment, base + i * 1000) for i in range(count)))
    db.close()


def start(kfbox, home):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [kfbox, "up", "--listen", f"127.0.0.1:{port}", "--executor", "process"],
        env={**os.environ, "KFBOX_HOME": home, "NO_COLOR": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not healthy(url):
        if server.poll() is not None:
            raise SystemExit(f"kfbox up exited with {server.returncode}")
        time.sleep(0.01)
    return server, url


def stop(server):
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)


def summary(values):
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1), "samples": len(values)}


def list_figures(browser, url, repeat, pages):
    firsts, turns = [], []
    runs_list(browser, url, 0)
    for _ in range(repeat):
        first, next_pages = runs_list(browser, url, pages)
        firsts.append(first)
        turns.extend(next_pages)
    return firsts, turns


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kfbox", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--screenshots", default=tempfile.mkdtemp(prefix="kfbox-bench-ui-"))
    args = parser.parse_args()
    kfbox = os.path.abspath(args.kfbox)
    home = tempfile.mkdtemp(prefix="kfbox-bench-ui-home-")
    work = tempfile.mkdtemp(prefix="kfbox-bench-ui-work-")
    server, url = start(kfbox, home)
    report = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
        try:
            client = kfp.Client(host=url)
            runs = {"pair": (run_to_end(client, pair, work), 2),
                    "wide": (run_to_end(client, wide, work), LAYERS * WIDTH),
                    # Its page draws one node: the loop, collapsed.
                    "loop": (run_to_end(client, loop, work), 1)}
            for name, (run_id, steps) in runs.items():
                first_paint(browser, url, run_id, steps)  # warm the server's caches, not the browser's
                measured = [first_paint(browser, url, run_id, steps) for _ in range(args.repeat)]
                first_paint(browser, url, run_id, steps, os.path.join(args.screenshots, f"{name}.png"))
                key = f"{ITERATIONS}_iterations" if name == "loop" else f"{steps}_steps"
                report[f"run_details_first_paint_ms_{key}"] = summary([m[0] for m in measured])
                report[f"graph_layout_ms_{key}"] = summary([m[1] for m in measured])
                with urllib.request.urlopen(f"{url}/apis/v1alpha1/runs/{run_id}/graph") as answer:
                    report[f"graph_json_bytes_{key}"] = len(answer.read())
            wide_ms = report[f"run_details_first_paint_ms_{LAYERS * WIDTH}_steps"]["median"]
            pair_ms = report["run_details_first_paint_ms_2_steps"]["median"]
            report["ratio_200_to_2_steps"] = round(wide_ms / pair_ms, 2)
            loop_ms = report[f"run_details_first_paint_ms_{ITERATIONS}_iterations"]["median"]
            report[f"ratio_{ITERATIONS}_iterations_to_2_steps"] = round(loop_ms / pair_ms, 2)

            firsts, _ = list_figures(browser, url, args.repeat, 0)
            report["runs_list_first_paint_ms_2_runs"] = summary(firsts)
            stop(server)
            add_listed_runs(home, args.runs)
            server, url = start(kfbox, home)
            firsts, turns = list_figures(browser, url, args.repeat, 5)
            report[f"runs_list_first_paint_ms_{args.runs}_runs"] = summary(firsts)
            report[f"runs_list_next_page_ms_{args.runs}_runs"] = summary(turns)
        finally:
            browser.close()
            stop(server)
    report["screenshots"] = args.screenshots
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
