"""Compile the `pipeline` (or the pipeline named by a third argument) defined in a test module
with the real kfp SDK.

Usage: compile.py MODULE.py OUT.yaml [ATTRIBUTE]
"""
import importlib.util
import os
import sys

from kfp import compiler


def main() -> None:
    source, out = sys.argv[1], sys.argv[2]
    attribute = sys.argv[3] if len(sys.argv) > 3 else "pipeline"
    # Its neighbours import as they would for `python MODULE.py`.
    sys.path.insert(0, os.path.dirname(os.path.abspath(source)))
    spec = importlib.util.spec_from_file_location("test_pipeline", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    compiler.Compiler().compile(getattr(module, attribute), out)


if __name__ == "__main__":
    main()
