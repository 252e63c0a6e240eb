"""A step that fails twice, then succeeds on its third attempt."""
from kfp import dsl


@dsl.component
def flaky(counter_path: str) -> int:
    import os

    count = int(open(counter_path).read()) if os.path.exists(counter_path) else 0
    count += 1
    with open(counter_path, "w") as f:
        f.write(str(count))
    if count < 3:
        raise RuntimeError(f"attempt {count} fails on purpose")
    return count


@dsl.pipeline(name="retries")
def pipeline(counter_path: str) -> int:
    task = flaky(counter_path=counter_path)
    task.set_retry(num_retries=4, backoff_duration="0s")
    return task.output
