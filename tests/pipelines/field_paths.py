"""`kfp.kubernetes.use_field_path_as_env`: what a step reads about its pod, and the pod labels
and annotations it reads them from."""
from kfp import dsl, kubernetes


@dsl.component
def show() -> str:
    import os

    return "|".join(os.environ.get(k, "-") for k in ["POD_NAME", "POD_NAMESPACE", "NODE", "TEAM", "NOTE"])


@dsl.pipeline(name="field-paths")
def pipeline() -> str:
    task = show()
    kubernetes.add_pod_label(task, "team", "vision")
    kubernetes.add_pod_annotation(task, "note", "hello")
    for name, path in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
        ("NODE", "spec.nodeName"),
        ("TEAM", "metadata.labels['team']"),
        ("NOTE", "metadata.annotations['note']"),
    ]:
        kubernetes.use_field_path_as_env(task, env_name=name, field_path=path)
    return task.output
