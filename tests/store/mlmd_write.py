"""Write to a kfbox store with the `ml-metadata` package (READWRITE), as another MLMD client
would: a new artifact type, an artifact, and an execution that uses it. Prints the artifact id.

Usage: mlmd_write.py STORE.sqlite
"""
import sys

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb


def main() -> None:
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = sys.argv[1]
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE
    store = metadata_store.MetadataStore(config)
    artifact_type = store.put_artifact_type(pb.ArtifactType(name="external.Table"))
    artifact = pb.Artifact(type_id=artifact_type, uri="/data/table.csv")
    artifact.custom_properties["display_name"].string_value = "table"
    [artifact_id] = store.put_artifacts([artifact])
    execution_type = store.put_execution_type(pb.ExecutionType(name="external.Notebook"))
    execution = pb.Execution(type_id=execution_type, last_known_state=pb.Execution.COMPLETE)
    event = pb.Event(type=pb.Event.INPUT, artifact_id=artifact_id)
    artifact.id = artifact_id
    store.put_execution(execution, [(artifact, event)], [])
    print(artifact_id)


if __name__ == "__main__":
    main()
