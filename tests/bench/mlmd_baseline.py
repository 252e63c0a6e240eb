"""Baseline for kfbox's store benchmark: ML Metadata's own calls on the same SQLite file.

Usage: mlmd_baseline.py STORE.sqlite  (run by `cargo bench -p kfbox-store` when
KFBOX_BENCH_MLMD_PYTHON names a Python with `pip install ml-metadata==1.17.1`).
"""
import statistics
import sys
import time

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb


def timed(reps, work):
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = sys.argv[1]
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    options = metadata_store.ListOptions(
        limit=20,
        order_by=metadata_store.OrderByField.CREATE_TIME,
        is_asc=False,
        filter_query="type = 'system.PipelineRun'",
    )
    first = timed(11, lambda: store.get_contexts(list_options=options))
    print(f"mlmd baseline: first 20 PipelineRun contexts, newest first: median {first:.3f} ms")
    pipeline = store.get_context_by_type_and_name("system.Pipeline", "bench-pipeline-3")
    by_context = timed(3, lambda: store.get_executions_by_context(pipeline.id))
    print(f"mlmd baseline: executions of one pipeline context: median {by_context:.3f} ms")


if __name__ == "__main__":
    main()
