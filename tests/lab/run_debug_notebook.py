"""Execute a notebook written by `kfbox debug --notebook` with nbclient, in the lab's Python 3
kernel: a probe cell (argv[2]) runs after the first cell, which loads the inputs. Prints the
probe's output and what the notebook raised, if it did."""
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

path, probe = sys.argv[1], sys.argv[2]
notebook = nbformat.read(path, as_version=4)
nbformat.validate(notebook)
notebook.cells.insert(1, nbformat.v4.new_code_cell(probe))
client = NotebookClient(notebook, kernel_name="python3", timeout=300)
try:
    client.execute()
    raised = None
except CellExecutionError as error:
    raised = f"{error.ename}: {error.evalue}"
for output in notebook.cells[1].outputs:
    print("probe:", output.get("text", "").strip())
failed = [i for i, cell in enumerate(notebook.cells) if any(o.output_type == "error" for o in cell.get("outputs", []))]
print("raised:", raised, "in cell", failed)
