"""End-to-end checks of kfbox's API with the real `kfp` SDK client and CLI.

Run by tests/server.rs against a `kfbox up` it started: `python client_tests.py TEST`, with
KFP_HOST (the server's URL), KFBOX_HOME and KFBOX_BIN in the environment. Each test asserts;
any exception fails it.
"""
import base64
import concurrent.futures
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

import kfp
import kfp_server_api
from kfp import compiler, dsl

HOST = os.environ["KFP_HOST"]
TOKEN = os.environ.get("KFP_TOKEN")
WORK = tempfile.mkdtemp(prefix="kfbox-api-")


def client():
    return kfp.Client(host=HOST, existing_token=TOKEN)


def http(method, path, body=None, token=TOKEN):
    """(status, parsed JSON or text) of a raw request."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(HOST + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def wait(c, run_id, timeout=300):
    run = c.wait_for_run_completion(run_id, timeout=timeout, sleep_duration=0.2)
    return run


def wait_state(c, run_id, states, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = c.get_run(run_id)
        if run.state in states:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never reached {states}; it is {run.state}")


def compile_to(pipeline, name):
    path = os.path.join(WORK, name)
    compiler.Compiler().compile(pipeline, path)
    return path


@dsl.component
def add(a: int, b: int) -> int:
    return a + b


@dsl.component
def write_rows(n: int, rows: dsl.Output[dsl.Dataset]):
    with open(rows.path, "w") as f:
        for i in range(n):
            f.write(f"row {i}\n")


@dsl.component
def count_rows(rows: dsl.Input[dsl.Dataset]) -> int:
    with open(rows.path) as f:
        return len(f.readlines())


@dsl.pipeline(name="api-adder")
def adder(x: int = 1, y: int = 2) -> int:
    first = add(a=x, b=y)
    return add(a=first.output, b=10).output


@dsl.pipeline(name="api-rows")
def rows_pipeline(n: int = 3):
    made = write_rows(n=n)
    count_rows(rows=made.outputs["rows"])


def yaml_to_json(path):
    import yaml
    return yaml.safe_load(open(path))


def task(run, name):
    for t in run.run_details.task_details:
        if t.display_name == name:
            return t
    raise AssertionError(f"no task {name} in {[t.display_name for t in run.run_details.task_details]}")


def test_runs():
    c = client()
    # create_run_from_pipeline_func, then wait: SUCCEEDED, with the right outputs.
    result = c.create_run_from_pipeline_func(rows_pipeline, arguments={"n": 7}, run_name="rows-7")
    run = wait(c, result.run_id)
    assert run.state == "SUCCEEDED", run
    assert run.display_name == "rows-7"
    writer = task(run, "write-rows")
    counter = task(run, "count-rows")
    assert writer.state == "SUCCEEDED" and counter.state == "SUCCEEDED"
    assert writer.outputs["rows"].artifact_ids == counter.inputs["rows"].artifact_ids
    status, body = http("GET", f"/apis/v2beta1/runs/{run.run_id}/nodes/{writer.task_id}/artifacts/rows:read")
    assert status == 200, body
    assert base64.b64decode(body["data"]).decode() == "".join(f"row {i}\n" for i in range(7))
    # A task may be named by its path too.
    status, body = http("GET", f"/apis/v2beta1/runs/{run.run_id}/nodes/write-rows/artifacts/rows:read")
    assert status == 200, body
    # The outputs as kfbox recorded them (ML Metadata execution properties).
    summary = json.loads(subprocess.run([os.environ["KFBOX_BIN"], "runs", "get", run.run_id, "--json"],
                                        check=True, capture_output=True, text=True).stdout)
    counted = [t for t in summary["tasks"] if t["path"] == "count-rows"][0]
    assert counted["outputs"]["parameters"]["Output"] == 7, counted
    # The log of a finished task (or, for a cache hit, of the execution it reused).
    status, log = http("GET", f"/apis/v1alpha1/runs/{run.run_id}/nodes/count-rows/log")
    assert status == 200 and "count_rows" in log, log

    # create_run_from_pipeline_package, pipeline outputs, and a parameter of the wrong type.
    package = compile_to(adder, "adder.yaml")
    result = c.create_run_from_pipeline_package(package, arguments={"x": 5, "y": 6})
    run = wait(c, result.run_id)
    assert run.state == "SUCCEEDED", run
    assert run.pipeline_spec["pipelineInfo"]["name"] == "api-adder"
    summary = json.loads(subprocess.run([os.environ["KFBOX_BIN"], "runs", "get", run.run_id, "--json"],
                                        check=True, capture_output=True, text=True).stdout)
    assert summary["outputs"]["Output"] == 21, summary["outputs"]
    try:
        c.create_run_from_pipeline_package(package, arguments={"x": "five"})
        raise AssertionError("a string for an int parameter was accepted")
    except kfp_server_api.ApiException as error:
        assert error.status == 400, error
        body = json.loads(error.body)
        assert body["code"] == 3 and "parameter `x`" in body["message"], body

    # upload_pipeline, upload_pipeline_version, run_pipeline by version.
    pipeline = c.upload_pipeline(package, pipeline_name="adder-uploaded", description="adds")
    assert c.get_pipeline_id("adder-uploaded") == pipeline.pipeline_id
    assert c.get_pipeline(pipeline.pipeline_id).description == "adds"
    version = c.upload_pipeline_version(package, "v2", pipeline_id=pipeline.pipeline_id)
    versions = c.list_pipeline_versions(pipeline.pipeline_id, sort_by="created_at").pipeline_versions
    assert [v.display_name for v in versions] == ["adder-uploaded", "v2"], versions
    assert c.get_pipeline_version(pipeline.pipeline_id, version.pipeline_version_id).pipeline_spec["root"]
    experiment = c.create_experiment("api-versions", description="runs by version")
    run = c.run_pipeline(experiment_id=experiment.experiment_id, job_name="by-version",
                         pipeline_id=pipeline.pipeline_id, version_id=version.pipeline_version_id,
                         params={"x": 100})
    run = wait(c, run.run_id)
    assert run.state == "SUCCEEDED", run
    assert run.pipeline_version_reference.pipeline_version_id == version.pipeline_version_id
    assert run.experiment_id == experiment.experiment_id
    assert c.list_runs(experiment_id=experiment.experiment_id).total_size == 1
    try:
        c.upload_pipeline(package, pipeline_name="adder-uploaded")
        raise AssertionError("a second pipeline with the same name was accepted")
    except kfp_server_api.ApiException as error:
        assert error.status == 409, error
    try:
        c.delete_pipeline(pipeline.pipeline_id)
        raise AssertionError("a pipeline with versions was deleted without cascade")
    except kfp_server_api.ApiException as error:
        assert error.status == 400 and "cascade" in error.body, error
    c.delete_pipeline_version(pipeline.pipeline_id, version.pipeline_version_id)
    assert len(c.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions or []) == 1

    # Experiments: create (idempotent by name through the client), get by id and name, archive.
    again = c.create_experiment("api-versions")
    assert again.experiment_id == experiment.experiment_id
    assert c.get_experiment(experiment_name="api-versions").experiment_id == experiment.experiment_id
    assert c.get_experiment(experiment_id=experiment.experiment_id).description == "runs by version"
    c.archive_experiment(experiment.experiment_id)
    assert c.get_experiment(experiment_id=experiment.experiment_id).storage_state == "ARCHIVED"
    assert c.get_run(run.run_id).storage_state == "ARCHIVED"
    c.unarchive_experiment(experiment.experiment_id)
    assert c.get_experiment(experiment_id=experiment.experiment_id).storage_state == "AVAILABLE"
    names = [e.display_name for e in c.list_experiments(page_size=100).experiments]
    assert "Default" in names and "api-versions" in names, names

    # Run archive, unarchive, delete; errors in the API's shape.
    c.archive_run(run.run_id)
    assert c.get_run(run.run_id).storage_state == "ARCHIVED"
    c.unarchive_run(run.run_id)
    c.delete_run(run.run_id)
    try:
        c.get_run(run.run_id)
        raise AssertionError("a deleted run was found")
    except kfp_server_api.ApiException as error:
        assert error.status == 404 and json.loads(error.body)["code"] == 5, error
    status, body = http("POST", "/apis/v2beta1/runs", {"display_name": "no spec"})
    assert status == 400 and "pipeline_spec" in body["message"], body
    status, body = http("POST", "/apis/v2beta1/runs", {"display_name": "bad", "pipeline_spec": {"hello": 1}})
    assert status == 400 and body["code"] == 3, body
    status, body = http("GET", "/apis/v2beta1/runs?filter=%7Bnope")
    assert status == 400 and "filter is not JSON" in body["message"], body
    status, body = http("GET", "/apis/v2beta1/runs?sort_by=colour")
    assert status == 400 and "no field `colour`" in body["message"], body
    status, body = http("POST", "/apis/v2beta1/experiments", ["not", "an", "object"])
    assert status == 400 and body["code"] == 3, body
    status, body = http("DELETE", "/apis/v2beta1/experiments")
    assert status == 405 and body["code"] == 12, (status, body)
    status, body = http("GET", "/apis/v1alpha1/runs/x/nodes/y/log?follow=maybe")
    assert status == 400 and body["code"] == 3 and "follow" in body["message"], (status, body)
    request = urllib.request.Request(HOST + "/apis/v2beta1/pipelines/upload", data=b"plain", method="POST")
    request.add_header("Content-Type", "text/plain")
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("a non-multipart upload was accepted")
    except urllib.error.HTTPError as error:
        body = json.loads(error.read())
        assert error.code == 415 and body["code"] == 3, body
    # The `pipeline_spec` + `platform_spec` wrapper, as the client sends a pipeline with
    # Kubernetes settings.
    spec = yaml_to_json(package)
    status, body = http("POST", "/apis/v2beta1/runs", {
        "display_name": "wrapped",
        "pipeline_spec": {"pipeline_spec": spec, "platform_spec": {"platforms": {"kubernetes": {}}}},
        "runtime_config": {"parameters": {"x": 1, "y": 1}}})
    assert status == 200, body
    wrapped = wait(c, body["run_id"])
    assert wrapped.state == "SUCCEEDED", wrapped
    assert wrapped.pipeline_spec["pipeline_spec"]["pipelineInfo"]["name"] == "api-adder"
    status, body = http("GET", "/apis/v2beta1/no/such/route")
    assert status == 404 and body["code"] == 5 and "no API route" in body["message"], body


def test_list_pages():
    c = client()
    experiment = c.create_experiment("api-pages")
    package = compile_to(adder, "adder.yaml")
    ids = []
    for i in range(7):
        run = c.run_pipeline(experiment.experiment_id, f"page-{i}", pipeline_package_path=package,
                             params={"x": i})
        ids.append(run.run_id)
        if i == 3:
            time.sleep(1.1)  # creation times have whole seconds in the API
    for run_id in ids:
        assert wait(c, run_id).state == "SUCCEEDED"
    # Newest first, three per page, across pages: every run once, in order.
    seen, token = [], ""
    while True:
        page = c.list_runs(experiment_id=experiment.experiment_id, page_size=3,
                           sort_by="created_at desc", page_token=token)
        assert page.total_size == 7, page.total_size
        seen += [r.display_name for r in page.runs]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"page-{i}" for i in reversed(range(7))], seen
    # By name, ascending.
    page = c.list_runs(experiment_id=experiment.experiment_id, page_size=100, sort_by="name")
    assert [r.display_name for r in page.runs] == sorted(seen)
    # Filters: one name; names IN a list; a substring; created after the fourth run.
    def filtered(predicates, **kw):
        f = json.dumps({"predicates": predicates})
        return [r.display_name for r in (c.list_runs(experiment_id=experiment.experiment_id,
                                                     page_size=100, filter=f, sort_by="name", **kw).runs or [])]
    assert filtered([{"key": "display_name", "operation": "EQUALS", "string_value": "page-3"}]) == ["page-3"]
    assert filtered([{"key": "name", "operation": "IN",
                      "string_values": {"values": ["page-1", "page-5"]}}]) == ["page-1", "page-5"]
    assert filtered([{"key": "display_name", "operation": 9, "string_value": "ge-6"}]) == ["page-6"]
    fifth = c.get_run(ids[4]).created_at
    after = filtered([{"key": "created_at", "operation": "GREATER_THAN_EQUALS",
                       "timestamp_value": fifth.isoformat().replace("+00:00", "Z")}])
    assert after == ["page-4", "page-5", "page-6"], after
    assert filtered([{"key": "state", "operation": "NOT_EQUALS", "string_value": "SUCCEEDED"}]) == []
    # Experiments filtered by name (what the client's get_experiment does).
    found = c.list_experiments(filter=json.dumps({"predicates": [
        {"key": "display_name", "operation": "EQUALS", "string_value": "api-pages"}]})).experiments
    assert [e.experiment_id for e in found] == [experiment.experiment_id]
    # A token is bound to its sort.
    page = c.list_runs(experiment_id=experiment.experiment_id, page_size=2, sort_by="created_at desc")
    try:
        c.list_runs(experiment_id=experiment.experiment_id, page_size=2, sort_by="name",
                    page_token=page.next_page_token)
        raise AssertionError("a token made for another sort was accepted")
    except kfp_server_api.ApiException as error:
        assert error.status == 400, error


@dsl.component
def sleeper(seconds: int, pid_file: str):
    import os, time
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    print("sleeping", flush=True)
    time.sleep(seconds)


@dsl.pipeline(name="api-sleeper")
def sleepy(seconds: int = 300, pid_file: str = ""):
    sleeper(seconds=seconds, pid_file=pid_file)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def wait_for_file(path, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and open(path).read().strip():
            return open(path).read().strip()
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared")


def test_terminate():
    c = client()
    pid_file = os.path.join(WORK, "sleeper.pid")
    result = c.create_run_from_pipeline_func(sleepy, arguments={"pid_file": pid_file})
    pid = int(wait_for_file(pid_file))
    assert pid_alive(pid)
    # While the step runs, its log streams: the first line arrives before the step ends.
    request = urllib.request.Request(
        f"{HOST}/apis/v1alpha1/runs/{result.run_id}/nodes/sleeper/log?follow=true")
    if TOKEN:
        request.add_header("Authorization", "Bearer " + TOKEN)
    with urllib.request.urlopen(request, timeout=60) as stream:
        line = ""
        while "sleeping" not in line:
            line = stream.readline().decode()
            assert line, "the log ended before the step printed"
        c.terminate_run(result.run_id)
        rest = stream.read().decode()  # ends when the task ends
    run = wait_state(c, result.run_id, {"CANCELED"})
    assert task(run, "sleeper").state == "CANCELED", run.run_details
    deadline = time.time() + 30
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid), f"step process {pid} outlived its terminated run"
    status, body = http("POST", f"/apis/v2beta1/runs/{result.run_id}:terminate")
    assert status == 400 and "already ended" in body["message"], body


def test_start_sleeper():
    """Start a long run and print its id and step pid once the step runs (for `kfbox down`)."""
    c = client()
    pid_file = os.path.join(WORK, "sleeper.pid")
    result = c.create_run_from_pipeline_func(sleepy, arguments={"pid_file": pid_file})
    pid = int(wait_for_file(pid_file))
    print(json.dumps({"run_id": result.run_id, "pid": pid}))


@dsl.component
def counted(log_file: str):
    with open(log_file, "a") as f:
        f.write("ran\n")


@dsl.component
def flaky(marker: str):
    import os
    if not os.path.exists(marker):
        raise RuntimeError("marker missing: failing on purpose")


@dsl.pipeline(name="api-retry")
def retried(log_file: str, marker: str):
    first = counted(log_file=log_file)
    flaky(marker=marker).after(first)


def test_retry():
    c = client()
    log_file = os.path.join(WORK, "counted.log")
    marker = os.path.join(WORK, "marker")
    result = c.create_run_from_pipeline_func(retried, arguments={"log_file": log_file, "marker": marker},
                                             enable_caching=False)
    run = wait(c, result.run_id)
    assert run.state == "FAILED", run.state
    assert task(run, "flaky").state == "FAILED"
    assert task(run, "flaky").error.message, run.run_details
    status, log = http("GET", f"/apis/v1alpha1/runs/{result.run_id}/nodes/flaky/log")
    assert status == 200 and "marker missing: failing on purpose" in log, log
    open(marker, "w").close()
    c._run_api.run_service_retry_run(run_id=result.run_id)
    run = wait(c, result.run_id)
    assert run.state == "SUCCEEDED", run
    assert task(run, "flaky").state == "SUCCEEDED"
    # The task that had succeeded was reused, not run again.
    assert open(log_file).read() == "ran\n"
    status, body = http("POST", f"/apis/v2beta1/runs/{result.run_id}:retry")
    assert status == 400 and "only failed or canceled runs" in body["message"], body


def test_recurring():
    c = client()
    experiment = c.create_experiment("api-recurring")
    package = compile_to(adder, "adder.yaml")
    periodic = c.create_recurring_run(experiment.experiment_id, "every-second", interval_second=1,
                                      pipeline_package_path=package, params={"x": 3},
                                      max_concurrency=2)
    assert periodic.status == "ENABLED" and periodic.trigger.periodic_schedule.interval_second == "1"
    cron = c.create_recurring_run(experiment.experiment_id, "cron-2s", cron_expression="*/2 * * * * *",
                                  pipeline_package_path=package, no_catchup=True)
    assert cron.trigger.cron_schedule.cron == "*/2 * * * * *"

    def runs_of(recurring):
        f = json.dumps({"predicates": [{"key": "recurring_run_id", "operation": "EQUALS",
                                        "string_value": recurring.recurring_run_id}]})
        return c.list_runs(experiment_id=experiment.experiment_id, filter=f, page_size=100).runs or []

    deadline = time.time() + 120
    while time.time() < deadline and (len(runs_of(periodic)) < 2 or len(runs_of(cron)) < 2):
        time.sleep(0.5)
    for recurring in (periodic, cron):
        fired = runs_of(recurring)
        assert len(fired) >= 2, (recurring.display_name, len(fired))
        for run in fired:
            assert wait(c, run.run_id).state == "SUCCEEDED"
    c.disable_recurring_run(periodic.recurring_run_id)
    c.disable_recurring_run(cron.recurring_run_id)
    assert c.get_recurring_run(periodic.recurring_run_id).status == "DISABLED"
    time.sleep(1)
    before = len(runs_of(periodic)) + len(runs_of(cron))
    time.sleep(3)
    assert len(runs_of(periodic)) + len(runs_of(cron)) == before, "a disabled recurring run fired"
    listed = c.list_recurring_runs(experiment_id=experiment.experiment_id).recurring_runs
    assert {r.display_name for r in listed} == {"every-second", "cron-2s"}
    c.enable_recurring_run(cron.recurring_run_id)
    assert c.get_recurring_run(cron.recurring_run_id).status == "ENABLED"
    c.delete_recurring_run(cron.recurring_run_id)
    c.delete_recurring_run(periodic.recurring_run_id)
    assert not c.list_recurring_runs(experiment_id=experiment.experiment_id).recurring_runs
    status, body = http("POST", "/apis/v2beta1/recurringruns", {
        "display_name": "bad", "pipeline_spec": json.load(open(package)) if package.endswith(".json") else None,
        "trigger": {"cron_schedule": {"cron": "*/5 * * * *"}}})
    assert status == 400 and "six fields" in body["message"], body


def test_cli():
    c = client()
    package = compile_to(adder, "adder.yaml")
    # A run from `kfbox run` lands in the Default experiment, which then has a last run.
    done = subprocess.run([os.environ["KFBOX_BIN"], "run", package], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # ...and, with this home's server up, `kfbox run` says where the UI shows it.
    assert f"In the UI: {HOST}/#/runs/details/" in done.stderr, done.stderr
    default = c.get_experiment(experiment_name="Default")
    assert default.last_run_created_at.year > 1970, default.last_run_created_at
    c.upload_pipeline(package, pipeline_name="cli-listed")
    run = c.create_run_from_pipeline_package(package, run_name="cli-run")
    wait(c, run.run_id)
    kfp_cli = os.path.join(os.path.dirname(sys.executable), "kfp")
    for args, expected in ((["run", "list"], "cli-run"), (["pipeline", "list"], "cli-listed"),
                           (["experiment", "list"], "Default"),
                           (["run", "get", run.run_id], "SUCCEEDED")):
        out = subprocess.run([kfp_cli, "--endpoint", HOST, *args], capture_output=True, text=True)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        assert expected in out.stdout, (args, out.stdout)


def test_openapi():
    status, document = http("GET", "/apis/v2beta1/openapi.json")
    assert status == 200 and document["openapi"].startswith("3."), document
    paths = document["paths"]
    # Every route the SDK's generated client calls for the features kfbox has is described.
    import re
    called = set()
    api_dir = os.path.dirname(kfp_server_api.api.__file__)
    for name in os.listdir(api_dir):
        if name.endswith(".py"):
            for path, method in re.findall(r"'(/apis/v2beta1/[^']*)', '([A-Z]+)'", open(os.path.join(api_dir, name)).read()):
                called.add((path, method.lower()))
    not_served = {("/apis/v2beta1/auth", "get"), ("/apis/v2beta1/filters", "get"),
                  ("/apis/v2beta1/scheduledworkflows", "post"), ("/apis/v2beta1/workflows", "post"),
                  ("/apis/v2beta1/visualizations/{namespace}", "post"),
                  ("/apis/v2beta1/pipelines/{pipeline.pipeline_id}", "patch"),
                  ("/apis/v2beta1/pipelines/{pipeline_version.pipeline_id}/versions/{pipeline_version.pipeline_version_id}", "patch")}
    missing = sorted((p, m) for p, m in called - not_served if m not in paths.get(p, {}))
    assert not missing, missing
    # Every documented route answers (the unknown-route error names none of them).
    for path, methods in paths.items():
        for method in methods:
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            status, body = http(method.upper(), concrete, {} if method == "post" else None)
            assert not (isinstance(body, dict) and "no API route answers" in body.get("message", "")), (method, path, body)


def test_seed():
    """Resources for schemathesis to read: their ids as one JSON line."""
    c = client()
    experiment = c.create_experiment("schemathesis")
    package = compile_to(rows_pipeline, "rows.yaml")
    pipeline = c.upload_pipeline(package, pipeline_name="schemathesis-rows")
    version = c.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions[0]
    run = c.run_pipeline(experiment.experiment_id, "schemathesis-run", version_id=version.pipeline_version_id,
                         pipeline_id=pipeline.pipeline_id, params={"n": 2})
    run = wait(c, run.run_id)
    assert run.state == "SUCCEEDED", run
    status, listed = http("GET", f"/apis/v1alpha1/runs/{run.run_id}/artifacts")
    assert status == 200, listed
    artifact = listed["artifacts"][0]
    recurring = c.create_recurring_run(experiment.experiment_id, "schemathesis-recurring", cron_expression="0 0 0 1 1 *",
                                       pipeline_id=pipeline.pipeline_id, version_id=version.pipeline_version_id,
                                       enabled=False)
    print(json.dumps({
        "experiment_id": experiment.experiment_id,
        "pipeline_id": pipeline.pipeline_id,
        "pipeline_version_id": version.pipeline_version_id,
        "version_id": version.pipeline_version_id,
        "run_id": run.run_id,
        "node_id": artifact["task"],
        "artifact_name": artifact["name"],
        "artifact_id": artifact["artifact_id"],
        "recurring_run_id": recurring.recurring_run_id,
        "name": "schemathesis-rows",
    }))


def test_traversal():
    c = client()
    result = c.create_run_from_pipeline_func(rows_pipeline, arguments={"n": 1})
    run = wait(c, result.run_id)
    node = task(run, "write-rows").task_id
    for path in (f"/apis/v2beta1/runs/{run.run_id}/nodes/{node}/artifacts/..%2F..%2F..%2Fkfbox.sqlite:read",
                 f"/apis/v2beta1/runs/{run.run_id}/nodes/..%2F..%2Fetc/artifacts/rows:read",
                 f"/apis/v2beta1/runs/{run.run_id}/nodes/%2Fetc%2Fpasswd/artifacts/rows:read",
                 f"/apis/v1alpha1/runs/{run.run_id}/nodes/..%2F..%2Fkfbox.sqlite/log"):
        status, body = http("GET", path)
        assert status == 400 and body["code"] == 3, (path, status, body)
    # An artifact the store points outside the run directories is not served either.
    rows = os.path.join(os.environ["KFBOX_HOME"], "runs", run.run_id, "artifacts", "write-rows", "rows")
    os.remove(rows)
    os.symlink("/etc/passwd", rows)
    status, body = http("GET", f"/apis/v2beta1/runs/{run.run_id}/nodes/{node}/artifacts/rows:read")
    assert status == 400 and "outside" in body["message"], (status, body)


def test_token():
    # The server was started beyond loopback with a token.
    status, body = http("GET", "/apis/v2beta1/healthz", token=None)
    assert status == 401 and body["code"] == 16, (status, body)
    status, body = http("GET", "/apis/v2beta1/runs", token="wrong")
    assert status == 401, (status, body)
    c = client()  # sends the token (existing_token)
    result = c.create_run_from_pipeline_func(adder)
    assert wait(c, result.run_id).state == "SUCCEEDED"


def test_load():
    """50 runs submitted at once; all complete and are recorded; list latency under load."""
    c = client()
    experiment = c.create_experiment(f"api-load-{os.getpid()}")
    package = compile_to(adder, "adder.yaml")
    started = time.time()

    def submit(i):
        return client().run_pipeline(experiment.experiment_id, f"load-{i}", pipeline_package_path=package,
                                     params={"x": i}, enable_caching=False).run_id

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        ids = list(pool.map(submit, range(50)))
    submitted = time.time() - started
    latencies = []
    deadline = time.time() + 600
    while time.time() < deadline:
        t = time.perf_counter()
        page = c.list_runs(experiment_id=experiment.experiment_id, page_size=20, sort_by="created_at desc")
        latencies.append(time.perf_counter() - t)
        states = [c.get_run(i).state for i in ids]
        if all(s in ("SUCCEEDED", "FAILED", "CANCELED") for s in states):
            break
        time.sleep(0.5)
    took = time.time() - started
    assert states.count("SUCCEEDED") == 50, states
    assert c.list_runs(experiment_id=experiment.experiment_id).total_size == 50
    print(json.dumps({
        "runs": 50,
        "submit_seconds": round(submitted, 2),
        "all_done_seconds": round(took, 2),
        "list_runs_under_load_ms": {
            "median": round(statistics.median(latencies) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
            "samples": len(latencies),
        },
    }))


@dsl.component(base_image="python:3.11", packages_to_install=["six==1.17.0"])
def uses_six() -> str:
    import six

    return six.__version__


@dsl.pipeline(name="packages-phase")
def packages_phase():
    uses_six()


def test_packages_phase():
    """In a home with nothing installed, a step's environment is built as it runs: the run's
    graph shows that as the step's phase while it lasts, and the step's log tells it."""
    c = client()
    run = c.create_run_from_pipeline_func(packages_phase, arguments={})
    phases = []
    deadline = time.time() + 300
    while time.time() < deadline:
        _, graph = http("GET", f"/apis/v1alpha1/runs/{run.run_id}/graph")
        node = next(n for n in graph["nodes"] if n["id"] == "uses-six")
        if node.get("phase") and node["phase"] not in phases:
            phases.append(node["phase"])
        if node["state"] not in ("PENDING", "RUNNING"):
            break
        time.sleep(0.02)
    done = c.wait_for_run_completion(run.run_id, timeout=300, sleep_duration=0.2)
    assert done.state == "SUCCEEDED", done
    _, log = http("GET", f"/apis/v1alpha1/runs/{run.run_id}/nodes/uses-six/log")
    print(json.dumps({"phases": phases, "log": log}))


if __name__ == "__main__":
    globals()["test_" + sys.argv[1]]()
    print("ok", sys.argv[1])
