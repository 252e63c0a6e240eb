"""Artifacts by path between steps, with metadata and metrics kept."""
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output


@dsl.component
def produce(rows: int, data: Output[Dataset], metrics: Output[Metrics]):
    with open(data.path, "w") as f:
        for i in range(rows):
            f.write(f"{i},{i * i}\n")
    data.metadata["rows"] = rows
    metrics.log_metric("rows", rows)


@dsl.component
def consume(data: Input[Dataset]) -> int:
    lines = open(data.path).read().splitlines()
    assert data.metadata["rows"] == len(lines), data.metadata
    return sum(int(line.split(",")[1]) for line in lines)


@dsl.pipeline(name="artifacts")
def pipeline(rows: int = 4) -> int:
    produced = produce(rows=rows)
    return consume(data=produced.outputs["data"]).output
