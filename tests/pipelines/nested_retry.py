"""A retry policy on a task that runs a nested pipeline reaches the step inside it, as KFP's
backend compiler hands it down: the inner step fails twice, then succeeds on its third attempt."""
from kfp import dsl

from retries import flaky


@dsl.pipeline(name="inner")
def inner(counter_path: str) -> int:
    return flaky(counter_path=counter_path).output


@dsl.pipeline(name="nested-retry")
def pipeline(counter_path: str) -> int:
    task = inner(counter_path=counter_path)
    task.set_retry(num_retries=3, backoff_duration="0s")
    return task.output
