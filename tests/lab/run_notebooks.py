"""Execute notebooks top to bottom with nbclient, as a user running every cell would.

Usage: python run_notebooks.py OUTPUT_DIR NOTEBOOK...

Each executed notebook is written to OUTPUT_DIR (also when a cell fails), and one JSON line per
notebook is printed: its path and the text its cells printed. Exits non-zero at the first
notebook with a failing cell.
"""
import json
import os
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def printed_text(notebook):
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            elif "data" in output and "text/plain" in output["data"]:
                parts.append(output["data"]["text/plain"])
    return "".join(parts)


def main():
    out_dir, notebooks = sys.argv[1], sys.argv[2:]
    os.makedirs(out_dir, exist_ok=True)
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(
            notebook,
            timeout=900,
            kernel_name="python3",
            resources={"metadata": {"path": os.path.dirname(path)}},
        )
        started = time.time()
        try:
            client.execute()
        except CellExecutionError as error:
            print(f"{path}: a cell failed:\n{error}", file=sys.stderr)
            return 1
        finally:
            nbformat.write(notebook, os.path.join(out_dir, os.path.basename(path)))
        print(json.dumps({"notebook": path, "seconds": round(time.time() - started, 1), "printed": printed_text(notebook)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
