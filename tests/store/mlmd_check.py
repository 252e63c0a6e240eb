"""Read one run from kfbox's store with the `ml-metadata` package (READONLY), print JSON.

Usage: mlmd_check.py STORE.sqlite RUN_ID
"""
import json
import sys

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb


def value(v):
    kind = v.WhichOneof("value")
    if kind == "struct_value":
        return json.loads(json.dumps(dict(v.struct_value)))
    return getattr(v, kind) if kind else None


def main() -> None:
    path, run_id = sys.argv[1], sys.argv[2]
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    run = store.get_context_by_type_and_name("system.PipelineRun", run_id)
    parents = store.get_parent_contexts_by_context(run.id)
    executions = store.get_executions_by_context(run.id)
    artifacts = store.get_artifacts_by_context(run.id)
    events = store.get_events_by_execution_ids([e.id for e in executions])
    out = {
        "context": {"type": run.type, "name": run.name,
                    "properties": {k: value(v) for k, v in run.custom_properties.items()}},
        "parents": [{"type": p.type, "name": p.name} for p in parents],
        "executions": [
            {"id": e.id, "type": e.type, "name": e.name,
             "state": pb.Execution.State.Name(e.last_known_state),
             "properties": {k: value(v) for k, v in e.custom_properties.items()}}
            for e in executions
        ],
        "artifacts": [
            {"id": a.id, "type": a.type, "uri": a.uri, "state": pb.Artifact.State.Name(a.state),
             "properties": {k: value(v) for k, v in a.custom_properties.items()}}
            for a in artifacts
        ],
        "events": [
            {"artifact_id": ev.artifact_id, "execution_id": ev.execution_id,
             "type": pb.Event.Type.Name(ev.type), "path": [s.key for s in ev.path.steps]}
            for ev in events
        ],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
