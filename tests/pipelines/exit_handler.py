"""An exit handler whose body fails: the exit task still runs and sees FAILED."""
from kfp import dsl
from kfp.dsl import PipelineTaskFinalStatus


@dsl.component
def fail():
    raise SystemExit(3)


@dsl.component
def report(status: PipelineTaskFinalStatus) -> str:
    print("final status:", status.state, status.pipeline_task_name)
    return status.state


@dsl.pipeline(name="exit-handler")
def pipeline():
    exit_task = report()
    with dsl.ExitHandler(exit_task):
        fail()
