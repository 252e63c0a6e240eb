"""The web UI in real headless Chromium (Debian's `chromium`, driven by Playwright), against a
`kfbox up` with real runs started through the real `kfp` client.

Run by tests/ui.rs: `python ui_tests.py TEST`, with KFP_HOST (the server's URL), CHROMIUM (the
browser) and KFBOX_UI_SCREENSHOTS (where screenshots go) in the environment. Every page a test
opens must log no console error and throw nothing; each test asserts, and any exception fails
it.
"""
import json
import os
import re
import sys
import tempfile
import time

import kfp
from kfp import compiler, dsl
from playwright.sync_api import expect, sync_playwright

HOST = os.environ["KFP_HOST"]
SHOTS = os.environ["KFBOX_UI_SCREENSHOTS"]
WORK = tempfile.mkdtemp(prefix="kfbox-ui-")
os.makedirs(SHOTS, exist_ok=True)


@dsl.component
def make_data(rows: int, data: dsl.Output[dsl.Dataset]):
    with open(data.path, "w") as f:
        f.write("x,square,label\n")
        for i in range(rows):
            f.write(f"{i},{i * i},{i % 2}\n")
    print(f"wrote {rows} rows")


@dsl.component
def evaluate(
    data: dsl.Input[dsl.Dataset],
    threshold: float,
    metrics: dsl.Output[dsl.Metrics],
    classification: dsl.Output[dsl.ClassificationMetrics],
    report: dsl.Output[dsl.Markdown],
    sliced: dsl.Output[dsl.SlicedClassificationMetrics],
):
    with open(data.path) as f:
        rows = len(f.readlines()) - 1
    metrics.log_metric("accuracy", round(0.5 + threshold / 4, 3))
    metrics.log_metric("rows", rows)
    classification.log_confusion_matrix(["cat", "dog"], [[7, 2], [1, 9]])
    classification.log_roc_curve(fpr=[0.0, 0.1, 0.4, 1.0], tpr=[0.0, 0.6, 0.9, 1.0], threshold=[1.0, 0.7, 0.4, 0.0])
    # kfp 2.17's SlicedClassificationMetrics logging methods fail (they call methods that
    # ClassificationMetrics no longer has), so the metadata is written in the shape its
    # `_update_metadata` defines.
    def slice_of(name, points):
        readings = [{"confidenceThreshold": t, "recall": tpr, "falsePositiveRate": fpr} for t, tpr, fpr in points]
        return {"slice": name, "sliceClassificationMetrics": {"confidenceMetrics": readings}}

    sliced.metadata["evaluationSlices"] = [
        slice_of("indoor", [(1.0, 0.0, 0.0), (0.5, 0.7, 0.2), (0.0, 1.0, 1.0)]),
        slice_of("outdoor", [(1.0, 0.0, 0.0), (0.5, 0.5, 0.3), (0.0, 1.0, 1.0)]),
    ]
    with open(report.path, "w") as f:
        f.write("# Evaluation\n\nAccuracy is **good**.\n\n<script>window.pwned = 1</script>\n")
    print("evaluated: UI-LOG-MARKER")


@dsl.pipeline(name="ui-demo")
def ui_demo(rows: int = 10, threshold: float = 0.5):
    data = make_data(rows=rows)
    evaluate(data=data.outputs["data"], threshold=threshold)


@dsl.component
def wait_then_say(seconds: float, word: str) -> str:
    import time

    time.sleep(seconds)
    print("saying", word)
    return word


@dsl.pipeline(name="ui-form")
def ui_form(word: str, seconds: float = 2.0):
    first = wait_then_say(seconds=seconds, word=word)
    wait_then_say(seconds=0.1, word=first.output)


@dsl.component
def square(x: int) -> int:
    return x * x


@dsl.component
def total(values: list) -> int:
    return sum(values)


@dsl.component
def announce(message: str):
    print(message)


@dsl.pipeline(name="ui-inner")
def inner(x: int) -> int:
    return square(x=x).output


@dsl.pipeline(name="ui-control-flow")
def control_flow(items: list = [1, 2, 3, 4, 5]):
    with dsl.ParallelFor(items) as item:
        squared = square(x=item)
    summed = total(values=dsl.Collected(squared.output))
    with dsl.If(summed.output > 10, name="big"):
        announce(message="big total")
    with dsl.If(summed.output <= 10, name="small"):
        announce(message="small total")
    inner(x=3)


@dsl.component
def divide(x: int) -> float:
    print("dividing by", x - 3)
    return 1 / (x - 3)


@dsl.pipeline(name="ui-divide")
def ui_divide(x: int = 3) -> float:
    return divide(x=x).output


@dsl.component
def halve(x: int) -> int:
    return x // 2


@dsl.pipeline(name="ui-large-loop")
def large_loop(items: list = list(range(120))):
    with dsl.ParallelFor(items=items) as item:
        halve(x=item)


def client():
    return kfp.Client(host=HOST)


def compile_to(pipeline, name):
    path = os.path.join(WORK, name)
    compiler.Compiler().compile(pipeline, path)
    return path


def run_demo(c, name, threshold):
    run = c.create_run_from_pipeline_func(ui_demo, arguments={"threshold": threshold}, run_name=name)
    done = c.wait_for_run_completion(run.run_id, timeout=300, sleep_duration=0.2)
    assert done.state == "SUCCEEDED", done
    return run.run_id


class Browser:
    """Headless Chromium with one page; console errors and page errors are collected and
    checked when the test ends."""

    def __init__(self, playwright, width=1280, height=800):
        self.browser = playwright.chromium.launch(
            executable_path=os.environ["CHROMIUM"], headless=True, args=["--no-sandbox"]
        )
        self.context = self.browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.problems = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.set_default_timeout(20_000)

    def open(self, fragment):
        self.page.goto(f"{HOST}/{fragment}")

    def shot(self, name):
        self.page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)

    def close(self):
        self.browser.close()
        assert not self.problems, "\n".join(self.problems)


def with_browser(test, **size):
    with sync_playwright() as p:
        browser = Browser(p, **size)
        try:
            test(browser)
        except Exception:
            browser.shot(f"failed-{sys.argv[1]}")
            raise
        browser.close()


def test_runs_and_details():
    """The runs list shows a finished run; its page (opened by the SDK's link) draws the graph
    with the right nodes and states; a task shows its log; the metrics render."""
    c = client()
    run_id = run_demo(c, "ui-first-run", 0.5)

    def check(b):
        page = b.page
        b.open("#/runs")
        row = page.locator(f'tr[data-run-id="{run_id}"]')
        expect(row).to_contain_text("ui-first-run")
        expect(row).to_contain_text("Succeeded")
        expect(row).to_contain_text("ui-demo")
        expect(row).to_contain_text("Default")
        b.shot("runs-list")

        # The link kfp.Client prints.
        b.open(f"#/runs/details/{run_id}")
        nodes = page.locator(".dag [data-node-id]")
        expect(nodes).to_have_count(2)
        expect(page.locator('.dag [data-node-id][data-state="SUCCEEDED"]')).to_have_count(2)
        expect(page.locator('[data-node-id="make-data"]')).to_contain_text("Succeeded")
        expect(page.locator(".dag-edge")).to_have_count(1)
        b.shot("run-details-graph")

        # The artifacts between the steps, on a switch, as the KFP UI draws them: make-data's
        # dataset, read by evaluate, and evaluate's four outputs.
        page.get_by_label("Show artifacts").check()
        artifacts = page.locator('.dag [data-node-id^="artifact:"]')
        expect(artifacts).to_have_count(5)
        expect(page.locator(".dag-edge")).to_have_count(6)
        b.shot("run-details-graph-artifacts")
        artifacts.filter(has_text=re.compile(r"^data")).click()
        expect(page).to_have_url(re.compile(r"#/artifacts/\d+$"))
        expect(page.locator("main")).to_contain_text("Dataset")
        page.go_back()
        expect(nodes).to_have_count(2)
        expect(page.locator(".dag-edge")).to_have_count(1)

        # A task: overview, then its log (searchable).
        page.locator('[data-node-id="evaluate"]').click()
        panel = page.locator(".task-panel")
        expect(panel).to_contain_text("threshold")
        panel.get_by_role("tab", name="Logs").click()
        expect(panel.locator(".log-text")).to_contain_text("UI-LOG-MARKER")
        # The SDK executor's lines are left out until asked for.
        expect(panel.locator(".log-text")).not_to_contain_text("Got executor_input")
        panel.get_by_label("Show executor lines").check()
        expect(panel.locator(".log-text")).to_contain_text("Got executor_input")
        expect(panel.locator(".log-text")).to_contain_text("UI-LOG-MARKER")
        panel.get_by_label("Show executor lines").uncheck()
        expect(panel.locator(".log-text")).not_to_contain_text("[KFP Executor")
        panel.get_by_label("Search the log").fill("marker")
        expect(panel).to_contain_text("1 matching line")
        expect(panel.locator(".log-text mark")).to_have_count(1)
        b.shot("task-logs")

        # Its artifacts: confusion matrix, ROC curve, metrics table, safe Markdown.
        panel.get_by_role("tab", name=re.compile("Artifacts")).click()
        expect(panel.locator(".artifact")).to_have_count(4)
        matrix = panel.locator(".confusion-matrix")
        expect(matrix).to_be_visible()
        cells = matrix.locator("td")
        expect(cells).to_have_text(["7", "2", "1", "9"])
        expect(matrix.locator("thead th")).to_have_text(["true \\ predicted", "cat", "dog"])
        expect(panel.locator(".roc canvas").first).to_be_visible()
        sliced = panel.locator('[data-artifact-type="SlicedClassificationMetrics"]')
        expect(sliced.locator(".roc[data-roc-series='2']")).to_be_visible()
        expect(sliced).to_contain_text("indoor")
        metrics = panel.locator("table.metrics")
        expect(metrics).to_contain_text("accuracy")
        expect(metrics).to_contain_text("0.625")
        markdown = panel.locator(".markdown")
        expect(markdown.locator("h1")).to_have_text("Evaluation")
        expect(markdown.locator("strong")).to_have_text("good")
        assert markdown.locator("script").count() == 0
        assert page.evaluate("window.pwned === undefined")
        panel.scroll_into_view_if_needed()
        b.shot("task-artifacts")

        # The dataset: preview, then its lineage (make-data produced it, evaluate used it).
        page.get_by_role("tab", name=re.compile("^Artifacts")).first.click()
        dataset = page.locator('[data-artifact-type="Dataset"]')
        expect(dataset.locator("table.data thead th")).to_have_text(["x", "square", "label"])
        expect(dataset.locator("table.data tbody tr")).to_have_count(10)
        with page.expect_download() as download:
            dataset.get_by_role("button", name="Download").click()
        with open(download.value.path()) as f:
            saved = f.read()
        assert saved.startswith("x,square,label\n0,0,0\n") and saved.count("\n") == 11, saved
        assert download.value.suggested_filename == "data", download.value.suggested_filename
        dataset.get_by_role("link", name="Lineage").click()
        expect(page.locator(".lineage [data-node-id]")).to_have_count(3)
        expect(page.locator(".lineage")).to_contain_text("make-data")
        expect(page.locator(".lineage")).to_contain_text("consumed as data")
        b.shot("artifact-lineage")

    with_browser(check)


def test_compare():
    """Two runs with different thresholds side by side: the differing metric is marked, and
    charts are drawn."""
    c = client()
    low = run_demo(c, "ui-low", 0.2)
    high = run_demo(c, "ui-high", 0.8)

    def check(b):
        page = b.page
        b.open("#/runs")
        page.get_by_label("Select ui-low").check()
        page.get_by_label("Select ui-high").check()
        page.get_by_role("button", name=re.compile("Compare 2 runs")).click()
        expect(page).to_have_url(re.compile(r"#/compare\?runlist="))
        table = page.locator('table[aria-label="Metrics"]')
        accuracy = table.locator("tr", has_text="accuracy")
        expect(accuracy).to_have_attribute("data-differs", "true")
        cells = accuracy.locator("td")
        expect(cells).to_have_count(2)
        values = sorted(cells.all_inner_texts())
        assert values == ["0.55", "0.7"], values
        rows = table.locator("tr", has_text="rows")
        expect(rows).to_have_attribute("data-differs", "false")
        params = page.locator('table[aria-label="Parameters"]')
        expect(params.locator("tr", has_text="threshold")).to_have_attribute("data-differs", "true")
        expect(page.locator(".compare .chart canvas").first).to_be_visible()
        # Each run is a series of its own, named in the chart's legend; the title names the
        # metric and the task and output that logged it.
        chart = page.locator(".compare .chart", has_text="accuracy (evaluate/metrics)")
        expect(chart.locator(".u-legend")).to_contain_text("ui-low")
        expect(chart.locator(".u-legend")).to_contain_text("ui-high")
        expect(page.locator(".roc[data-roc-series='2']")).to_be_visible()
        b.shot("compare")

        # The runs list with a parameter and a metric as columns, sorted and filtered by them.
        b.open("#/runs")
        picker = page.locator(".columns-picker")
        picker.locator("summary").click()
        picker.get_by_label("threshold parameter").check()
        picker.get_by_label("accuracy metric").check()
        picker.locator("summary").click()
        runs = page.locator(".runs-table")
        accuracy = runs.locator("th[data-column='metrics.accuracy']")
        accuracy.get_by_role("button").click()
        expect(accuracy).to_have_attribute("aria-sort", "descending")
        rows = runs.locator("tbody tr")
        expect(rows.first).to_contain_text("ui-high")
        expect(rows.first.locator("td[data-column='metrics.accuracy']")).to_have_text("0.7")
        expect(rows.nth(1).locator("td[data-column='parameters.threshold']")).to_have_text("0.2")
        accuracy.get_by_role("button").click()
        expect(accuracy).to_have_attribute("aria-sort", "ascending")
        expect(rows.first).to_contain_text("ui-low")
        b.shot("runs-columns")
        by_value = page.get_by_label("Filter by parameter or metric")
        by_value.fill("accuracy > 0.6")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("ui-high")
        by_value.fill("threshold <= 0.2")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("ui-low")
        by_value.fill("f1 > 0.5")
        expect(page.locator(".field-error")).to_contain_text("no run has a parameter or metric `f1`")
        # The columns are kept in this browser.
        page.reload()
        expect(runs.locator("th[data-column='parameters.threshold']")).to_be_visible()

    with_browser(check)
    assert low != high
    # The same through the API, as kfp.Client sends it: sort by a metric, filter by a parameter.
    ranked = [r.display_name for r in c.list_runs(sort_by="metrics.accuracy desc", page_size=10).runs]
    assert ranked == ["ui-high", "ui-low"], ranked
    below = {"predicates": [{"key": "parameters.threshold", "operation": "LESS_THAN", "double_value": 0.5}]}
    found = [r.display_name for r in c.list_runs(filter=json.dumps(below), page_size=10).runs]
    assert found == ["ui-low"], found


def test_run_form():
    """A pipeline uploaded with the client: its preview graph, the run form's validation, and a
    run started from the form turning green live."""
    c = client()
    pipeline = c.upload_pipeline(compile_to(ui_form, "form.yaml"), pipeline_name="ui-form")

    def check(b):
        page = b.page
        b.open(f"#/pipelines/details/{pipeline.pipeline_id}")
        expect(page.locator(".preview-graph [data-node-id]")).to_have_count(2)
        form = page.get_by_role("form", name="Start a run")
        expect(form.get_by_label(re.compile("^seconds"))).to_have_value("2")
        form.get_by_role("button", name="Start").click()
        expect(form.locator(".problem")).to_have_text("Expected required.")
        form.get_by_label(re.compile("^word")).fill("hello-from-the-form")
        b.shot("run-form")
        form.get_by_role("button", name="Start").click()
        expect(page).to_have_url(re.compile(r"#/runs/details/"))
        nodes = page.locator(".dag [data-node-id]")
        expect(nodes).to_have_count(2)
        # Seen running, then green, without reloading the page.
        expect(page.locator('.dag [data-state="RUNNING"]').first).to_be_visible(timeout=60_000)
        b.shot("run-live")
        expect(page.locator('.dag [data-node-id][data-state="SUCCEEDED"]')).to_have_count(2, timeout=120_000)
        expect(page.locator("h1 .state-badge")).to_have_text(re.compile("Succeeded"))
        b.shot("run-green")
        run_id = page.url.split("#/runs/details/")[1].split("?")[0]
        run = c.get_run(run_id)
        assert run.state == "SUCCEEDED", run.state
        assert run.runtime_config.parameters == {"word": "hello-from-the-form", "seconds": 2}, run.runtime_config

        # A recurring run of the same pipeline: created from the form, listed, disabled.
        b.open("#/recurringruns")
        page.get_by_label("Pipeline (its newest version)").select_option(label="ui-form")
        form = page.get_by_role("form", name="New recurring run")
        form.get_by_label("Name").fill("ui-hourly")
        form.get_by_label(re.compile("^word")).fill("tick")
        form.get_by_role("button", name="Create").click()
        row = page.locator("tr", has_text="ui-hourly")
        expect(row).to_contain_text("Enabled")
        expect(row).to_contain_text("every 3600 s")
        row.get_by_role("button", name="Disable").click()
        expect(row).to_contain_text("Disabled")
        listed = [r for r in c.list_recurring_runs().recurring_runs if r.display_name == "ui-hourly"]
        assert len(listed) == 1 and listed[0].status == "DISABLED", listed
        b.shot("recurring")

    with_browser(check)


def test_upload_and_terminate():
    """A pipeline uploaded through the page, a long run started from it, and terminated from
    its page."""
    c = client()
    package = compile_to(ui_form, "upload.yaml")

    def check(b):
        page = b.page
        b.open("#/pipelines")
        upload = page.get_by_role("form", name="Upload a pipeline")
        upload.locator('input[type="file"]').set_input_files(package)
        upload.get_by_label("Name").fill("ui-uploaded")
        upload.get_by_role("button", name="Upload").click()
        expect(page).to_have_url(re.compile(r"#/pipelines/details/"))
        expect(page.get_by_role("heading", name="ui-uploaded")).to_be_visible()
        expect(page.locator(".preview-graph [data-node-id]")).to_have_count(2)
        form = page.get_by_role("form", name="Start a run")
        form.get_by_label(re.compile("^seconds")).fill("300")
        form.get_by_label(re.compile("^word")).fill("never-said")
        form.get_by_role("button", name="Start").click()
        expect(page.locator('.dag [data-state="RUNNING"]').first).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Terminate").click()
        expect(page.locator("h1 .state-badge")).to_have_text(re.compile("Canceled"), timeout=60_000)
        expect(page.get_by_role("button", name="Retry")).to_be_visible()
        expect(page.locator('.dag [data-node-id="wait-then-say"]')).to_have_attribute("data-state", "CANCELED")
        b.shot("terminated")
        run_id = page.url.split("#/runs/details/")[1].split("?")[0]
        assert c.get_run(run_id).state == "CANCELED"
        assert [p.display_name for p in c.list_pipelines().pipelines] == ["ui-uploaded"]
        # Without a name, the pipeline is called what its file calls it (`pipelineInfo.name`),
        # not after the file.
        b.open("#/pipelines")
        upload = page.get_by_role("form", name="Upload a pipeline")
        upload.locator('input[type="file"]').set_input_files(package)
        upload.get_by_role("button", name="Upload").click()
        expect(page.get_by_role("heading", name="ui-form")).to_be_visible()
        assert sorted(p.display_name for p in c.list_pipelines().pipelines) == ["ui-form", "ui-uploaded"]

    with_browser(check)


def test_control_flow():
    """Loops, conditions and nested pipelines are groups: iterations counted and collapsed,
    expandable from the keyboard; the branch not taken is marked as such."""
    c = client()
    run = c.create_run_from_pipeline_func(control_flow, arguments={}, run_name="ui-control-flow")
    done = c.wait_for_run_completion(run.run_id, timeout=300, sleep_duration=0.2)
    assert done.state == "SUCCEEDED", done

    def check(b):
        page = b.page
        b.open(f"#/runs/details/{run.run_id}")
        loop = page.locator(".dag-group.kind-loop")
        expect(loop).to_have_count(1)
        expect(loop.locator(".dag-group-header")).to_contain_text("5 iterations")
        iterations = loop.locator('[data-node-id*="iteration-"]')
        expect(iterations).to_have_count(5)
        expect(loop.locator('[data-node-id$="/square"]')).to_have_count(0)
        b.shot("control-flow")
        # Expand one iteration from the keyboard: its step appears.
        first = loop.get_by_role("button", name=re.compile("Expand iteration 0"))
        first.focus()
        page.keyboard.press("Enter")
        expect(loop.locator('[data-node-id$="iteration-0/square"]')).to_have_attribute("data-state", "SUCCEEDED")
        # An iteration of one step stands for it: a click opens that step's logs.
        loop.locator('[data-node-id$="iteration-2"]').click()
        panel = page.locator(".task-panel")
        expect(panel).to_have_attribute("aria-label", re.compile("iteration-2/square$"))
        expect(panel.get_by_role("tab", name="Logs")).to_have_attribute("aria-selected", "true")
        panel.get_by_role("button", name="Close the task panel").click()
        # The branch taken ran; the other did not.
        expect(page.locator('.dag-group.kind-condition[data-group-id="condition-2"] [data-node-id$="announce"]')).to_have_attribute("data-state", "SUCCEEDED")
        skipped = page.locator('.dag [data-node-id="condition-3"], .dag-group[data-group-id="condition-3"]')
        expect(skipped.first).to_have_attribute("class", re.compile("state-(SKIPPED|NOT_RUN)"))
        # The nested pipeline is a group holding its own step.
        expect(page.locator('.dag-group.kind-dag [data-node-id$="/square"]')).to_have_count(1)
        # Collapse the loop: one node with its count.
        loop.get_by_role("button", name=re.compile("Collapse for-loop")).click()
        expect(page.locator(".dag-group.kind-loop")).to_have_count(0)
        expect(page.locator('[data-node-id^="for-loop"]').first).to_contain_text("5 iterations")
        b.shot("control-flow-collapsed")

    with_browser(check)


def test_large_loop():
    """A loop of more than 40 iterations comes collapsed with its iterations counted by state,
    and the graph holds none of them; expanding it shows a page of 50, paged and filtered by
    state from the graph's bar. (A failing iteration stops a run's others, so every iteration
    here succeeds: the unit tests of `graph.rs` page through mixed states.)"""
    c = client()
    run = c.create_run_from_pipeline_func(large_loop, arguments={}, run_name="ui-large-loop")
    done = c.wait_for_run_completion(run.run_id, timeout=300, sleep_duration=0.5)
    assert done.state == "SUCCEEDED", done
    import urllib.request

    with urllib.request.urlopen(f"{HOST}/apis/v1alpha1/runs/{run.run_id}/graph") as answer:
        graph = json.load(answer)
    assert not [n for n in graph["nodes"] if "iteration-" in n["id"]], "a collapsed loop's iterations were sent"
    loop = next(n for n in graph["nodes"] if n["kind"] == "loop")
    assert loop["paged"] and loop["iteration_states"] == {"SUCCEEDED": 120}, loop
    assert graph["step_states"] == {"SUCCEEDED": 120}, graph["step_states"]

    def check(b):
        page = b.page
        b.open(f"#/runs/details/{run.run_id}")
        expect(page.locator(".graph-bar .summary")).to_have_text("120 steps: 120 succeeded")
        node = page.locator('[data-node-id^="for-loop"]').first
        expect(node).to_contain_text("120 iterations · 120 succeeded")
        b.shot("large-loop-collapsed")
        # The loop's counts in its task panel ask for a page of that state, and the loop opens.
        node.click()
        panel = page.locator(".task-panel")
        panel.get_by_role("button", name="120 succeeded").click()
        pager = page.get_by_role("group", name=re.compile("Iterations of for-loop"))
        expect(pager).to_contain_text("iterations 1–50 of 120 succeeded")
        expect(page.locator('.dag-group.kind-loop [data-node-id$="/iteration-49"]')).to_have_count(1)
        panel.get_by_role("button", name="Close the task panel").click()
        page.get_by_role("button", name=re.compile("Collapse for-loop")).click()
        expect(pager).to_have_count(0)
        # Expanded: the first page of 50 iterations, and the way to the rest.
        page.get_by_role("button", name=re.compile("Expand for-loop")).click()
        expect(pager).to_contain_text("iterations 1–50 of 120")
        group = page.locator(".dag-group.kind-loop")
        expect(group.locator('[data-node-id*="/iteration-"]:not([data-node-id$="halve"])')).to_have_count(50)
        pager.get_by_role("button", name="Next ›").click()
        expect(pager).to_contain_text("iterations 51–100 of 120")
        expect(group.locator('[data-node-id$="/iteration-99"]')).to_have_count(1)
        # Of one state, from the first page again.
        pager.get_by_role("combobox", name="Show iterations in state").select_option("SUCCEEDED")
        expect(pager).to_contain_text("iterations 1–50 of 120 succeeded")
        expect(group.locator('[data-node-id$="/iteration-0"]')).to_have_count(1)
        b.shot("large-loop-succeeded-page")
        # Collapsed again: no iterations asked for.
        page.get_by_role("button", name=re.compile("Collapse for-loop")).click()
        expect(pager).to_have_count(0)
        expect(page.locator('[data-node-id*="/iteration-"]')).to_have_count(0)

    with_browser(check)


def test_token():
    """On a server that needs a token, the page asks for it once, then works; a wrong one is
    asked for again."""
    token = os.environ["KFP_TOKEN"]

    def check(b):
        page = b.page
        b.open("#/runs")
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("needs its token")
        dialog.get_by_label("Token").fill("not-the-token")
        dialog.get_by_role("button", name="Use it").click()
        expect(page.get_by_role("dialog")).to_be_visible()
        b.shot("token-asked")
        page.get_by_role("dialog").get_by_label("Token").fill(token)
        page.get_by_role("dialog").get_by_role("button", name="Use it").click()
        expect(page.get_by_role("heading", name="No runs yet")).to_be_visible()
        expect(page.get_by_role("dialog")).to_have_count(0)
        # Kept for the next visit.
        b.open("#/experiments")
        expect(page.locator("table.list")).to_contain_text("Default")
        expect(page.get_by_role("dialog")).to_have_count(0)
        # The refusals before the token was given are the console errors expected here.
        b.problems = [p for p in b.problems if "401" not in p]

    with_browser(check)


def test_empty_and_keyboard():
    """A server with no runs says how to start one; the UI works from the keyboard, on a narrow
    window, and for unknown pages and ids."""

    def check(b):
        page = b.page
        b.open("")
        expect(page.get_by_role("heading", name="No runs yet")).to_be_visible()
        expect(page.locator(".empty")).to_contain_text("kfbox run pipeline.yaml")
        expect(page.locator(".endpoint")).to_contain_text(f"export KF_PIPELINES_ENDPOINT={HOST}")
        b.shot("empty-runs")
        # Keyboard: the skip link first, then the sections.
        page.keyboard.press("Tab")
        expect(page.locator(".skip")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Runs", exact=True)).to_be_focused()
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile("#/experiments$"))
        expect(page.locator("table.list")).to_contain_text("Default")
        # A new experiment, then archived from its page.
        new = page.get_by_role("form", name="New experiment")
        new.get_by_label("Name").fill("ui-experiment")
        new.get_by_role("button", name="Create").click()
        expect(page.get_by_role("heading", name="ui-experiment")).to_be_visible()
        expect(page.get_by_role("heading", name="No runs yet")).to_be_visible()
        page.get_by_role("button", name="Archive").click()
        expect(page.locator("h1 .type-tag")).to_have_text("archived")
        assert client().get_experiment(experiment_name="ui-experiment").storage_state == "ARCHIVED"
        b.open("#/nowhere")
        expect(page.get_by_role("heading", name="No such page")).to_be_visible()
        page.set_viewport_size({"width": 420, "height": 800})
        b.open("#/pipelines")
        expect(page.get_by_role("heading", name="No pipelines yet")).to_be_visible()
        expect(page.get_by_role("link", name="Runs", exact=True)).to_be_hidden()
        page.get_by_role("button", name="Menu").click()
        expect(page.get_by_role("link", name="Runs", exact=True)).to_be_visible()
        b.shot("narrow")

    with_browser(check)

    def missing(b):
        # An unknown run: the error in words (the API's 404 is the one console error allowed).
        b.open("#/runs/details/no-such-run")
        expect(b.page.get_by_role("alert")).to_contain_text("no-such-run")
        b.shot("unknown-run")
        b.problems = [p for p in b.problems if "404" not in p]

    with_browser(missing)


def test_lab_ready():
    """The sidebar says JupyterLab is ready, with a link that opens the welcome notebook."""
    lab_url = os.environ["LAB_URL"]

    def check(b):
        page = b.page
        b.open("#/runs")
        card = page.get_by_role("region", name="JupyterLab")
        link = card.get_by_role("link", name="Open JupyterLab")
        expect(link).to_have_attribute("href", lab_url)
        assert "/lab/tree/welcome.ipynb?token=" in lab_url, lab_url
        b.shot("lab-ready")

    with_browser(check)


def test_lab_failed():
    """The sidebar says why JupyterLab did not start, and where its log is."""

    def check(b):
        page = b.page
        b.open("#/runs")
        card = page.get_by_role("region", name="JupyterLab")
        expect(card).to_contain_text("Did not start")
        expect(card).to_contain_text("uv")
        expect(card).to_contain_text("python/logs/uv.log")
        b.shot("lab-failed")

    with_browser(check)


def test_failure_and_rerun():
    """A failed run says why in words (the exception, not "exited with code 1") on its page and
    in the task's panel; "Rerun" opens the form with the run's values, and a changed value starts
    a run that succeeds, whose details show the parameters it used and its outputs."""
    c = client()
    run = c.create_run_from_pipeline_func(ui_divide, arguments={}, run_name="ui-divide-first")
    done = c.wait_for_run_completion(run.run_id, timeout=300, sleep_duration=0.2)
    assert done.state == "FAILED", done

    def check(b):
        page = b.page
        b.open(f"#/runs/details/{run.run_id}")
        banner = page.get_by_role("alert").filter(has_text="The run failed")
        expect(banner).to_contain_text("ZeroDivisionError: division by zero")
        page.locator('[data-node-id="divide"]').click()
        expect(page.locator(".task-panel")).to_contain_text("ZeroDivisionError: division by zero")
        b.shot("failure-in-words")

        page.get_by_role("button", name="Rerun").click()
        form = page.get_by_role("form", name="Run it again")
        expect(form.get_by_label(re.compile("^x"))).to_have_value("3")
        form.get_by_label(re.compile("^x")).fill("5")
        b.shot("rerun-form")
        form.get_by_role("button", name="Start").click()
        expect(page).to_have_url(re.compile(r"#/runs/details/"))
        expect(page.locator("h1 .state-badge")).to_have_text(re.compile("Succeeded"), timeout=120_000)
        again = page.url.split("#/runs/details/")[1].split("?")[0]
        assert again != run.run_id
        assert c.get_run(again).runtime_config.parameters == {"x": 5}
        page.get_by_role("tab", name="Parameters & details").click()
        details = page.locator(".run-fields")
        expect(details).to_contain_text("Parameters (as the run used them)")
        expect(details.locator("table.params").first).to_contain_text("5")
        expect(details).to_contain_text("Outputs")
        expect(details).to_contain_text("0.5")
        b.shot("rerun-details")

    with_browser(check)


if __name__ == "__main__":
    globals()["test_" + sys.argv[1]]()
    print("ok", sys.argv[1])
