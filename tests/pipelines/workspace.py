"""A pipeline workspace (`PipelineConfig(workspace=...)`): one directory per run that every
task sees at `dsl.WORKSPACE_PATH_PLACEHOLDER`."""
from kfp import dsl
from kfp.dsl import PipelineConfig, WorkspaceConfig

RUNTIME = "kfbox/runtime:latest"


@dsl.component(base_image=RUNTIME)
def clone(workspace: str):
    import os

    os.makedirs(os.path.join(workspace, "repo"), exist_ok=True)
    with open(os.path.join(workspace, "repo", "README"), "w") as f:
        f.write("cloned")


@dsl.component(base_image=RUNTIME)
def build(workspace: str) -> str:
    import os

    with open(os.path.join(workspace, "repo", "README")) as f:
        return f.read() + " in " + os.path.basename(workspace)


@dsl.pipeline(name="workspace", pipeline_config=PipelineConfig(workspace=WorkspaceConfig(size="1Gi")))
def pipeline() -> str:
    first = clone(workspace=dsl.WORKSPACE_PATH_PLACEHOLDER)
    return build(workspace=dsl.WORKSPACE_PATH_PLACEHOLDER).after(first).output
