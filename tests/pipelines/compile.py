"""Compile the `pipeline` defined in a test module with the real kfp SDK.

Usage: compile.py MODULE.py OUT.yaml
"""
import importlib.util
import sys

from kfp import compiler


def main() -> None:
    source, out = sys.argv[1], sys.argv[2]
    spec = importlib.util.spec_from_file_location("test_pipeline", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    compiler.Compiler().compile(module.pipeline, out)


if __name__ == "__main__":
    main()
