"""kfbox's runner of a lightweight component: the kfp SDK's own executor (`kfp.dsl.executor_main`,
with the same arguments), run so that its log reads well and its failure can be told in words.

- Everything the step prints goes to one stream, in the order it was printed (stderr joins
  stdout), as a terminal shows it.
- Every line the SDK's executor logs carries its `[KFP Executor` mark, the lines of its
  ExecutorInput dump too, so that log views can set them apart from the component's own lines;
  the component's own `logging` calls print as Python's default format does.
- When the component raises, the traceback's frames in the SDK (and in this runner) are marked
  the same way, the component's frames follow under "Traceback (most recent call last):", and
  the frames of the SDK's temporary `ephemeral_component.py` name the user's file and line
  where kfbox knows them (KFBOX_COMPONENT_SOURCE) and the source agrees. The exception line and
  the component's innermost frame go to KFBOX_FAILURE_FILE for the task's error; with
  KFBOX_POST_MORTEM=1 (`kfbox debug --pdb`), Python's debugger then opens where it raised.

Nothing is dropped: the log holds every line the SDK's executor would print.
"""
import json
import linecache
import logging
import os
import runpy
import sys
import traceback

MARK = "[KFP Executor]"
FAILURE_FILE = os.environ.pop("KFBOX_FAILURE_FILE", None)
SOURCE = os.environ.pop("KFBOX_COMPONENT_SOURCE", None)
# `kfbox debug --pdb`: stop in Python's debugger where the component raised.
POST_MORTEM = os.environ.pop("KFBOX_POST_MORTEM", None) == "1"
# `kfbox debug --code FILE.py`: the component's function as that file defines it now.
CODE = os.environ.pop("KFBOX_COMPONENT_CODE", None)
# `kfbox debug`, in a terminal: the SDK executor's lines are left out.
HIDE_EXECUTOR = os.environ.pop("KFBOX_HIDE_EXECUTOR", None) == "1"


def sdk_dir():
    import kfp

    return os.path.dirname(os.path.abspath(kfp.__file__)) + os.sep


class Formatter(logging.Formatter):
    """The SDK's format for the SDK's records, every line marked; Python's default for others."""

    def __init__(self, sdk):
        super().__init__()
        self.sdk = sdk
        self.marked = logging.Formatter("[KFP Executor %(asctime)s %(levelname)s]: %(message)s")
        self.plain = logging.Formatter(logging.BASIC_FORMAT)

    def format(self, record):
        if not os.path.abspath(record.pathname).startswith(self.sdk):
            return self.plain.format(record)
        first, *rest = self.marked.format(record).split("\n")
        return "\n".join([first] + [f"{MARK} {line}" for line in rest])


def component_frame_mapper(module_path):
    """Maps a frame of the SDK's temporary module to the user's file and line, when kfbox said
    where the function is and the line there reads the same."""
    if not SOURCE or not module_path:
        return lambda frame: frame
    source = json.loads(SOURCE)
    user_file, user_def = source["file"], int(source["def_line"])
    temporary = os.path.abspath(module_path)
    try:
        with open(temporary) as f:
            lines = f.read().split("\n")
    except OSError:
        return lambda frame: frame
    function = argument("function_to_execute")
    temporary_def = next(
        (i + 1 for i, line in enumerate(lines) if line.startswith(f"def {function}(")), None
    )
    if temporary_def is None:
        return lambda frame: frame

    def mapped(frame):
        if os.path.abspath(frame.filename) != temporary or frame.lineno < temporary_def:
            return frame
        line = user_def + frame.lineno - temporary_def
        if linecache.getline(user_file, line).strip() != (frame.line or "").strip():
            return frame
        return traceback.FrameSummary(user_file, line, frame.name)

    return mapped


def argument(name):
    """The value of the executor's `--NAME` argument (the last one given, as argparse takes it)."""
    value = None
    for i, arg in enumerate(sys.argv):
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
        elif arg == f"--{name}" and i + 1 < len(sys.argv):
            value = sys.argv[i + 1]
    return value


def use_code(code):
    """Put the function as `code` (a Python file) defines it now in place of the one the SDK
    wrote into its temporary module, keeping that module's imports; frames then name `code`."""
    global SOURCE
    import ast
    import textwrap

    function, module_path = argument("function_to_execute"), argument("component_module_path")
    with open(code) as f:
        text = f.read()
    found = [
        node
        for node in ast.parse(text, code).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function
    ]
    if not found:
        sys.stderr.write(f"{code} defines no function `{function}` at its top level\n")
        sys.exit(2)
    node = found[-1]
    lines = text.split("\n")[node.lineno - 1 : node.end_lineno]
    with open(module_path) as f:
        module = f.read().split("\n")
    start = next((i for i, line in enumerate(module) if line.startswith(f"def {function}(")), len(module))
    with open(module_path, "w") as f:
        f.write("\n".join(module[:start] + [textwrap.dedent("\n".join(lines))]) + "\n")
    SOURCE = json.dumps({"file": os.path.abspath(code), "def_line": node.lineno})


def report(error, sdk):
    here = os.path.abspath(__file__)
    internal = (sdk, os.path.dirname(os.__file__) + os.sep)
    mapped = component_frame_mapper(argument("component_module_path"))
    frames = [mapped(frame) for frame in traceback.extract_tb(error.__traceback__)]

    def is_internal(frame):
        path = os.path.abspath(frame.filename)
        return path == here or path.startswith(internal) or frame.filename.startswith("<frozen")

    outer = []
    while frames and is_internal(frames[0]):
        outer.append(frames.pop(0))
    exception = traceback.format_exception_only(type(error), error)
    out = sys.stdout
    out.flush()
    if outer and not HIDE_EXECUTOR:
        out.write(f"{MARK} Traceback, its frames in the SDK and in kfbox's runner:\n")
        for text in traceback.format_list(outer):
            for line in text.rstrip("\n").split("\n"):
                out.write(f"{MARK} {line}\n")
    out.write("Traceback (most recent call last):\n")
    out.write("".join(traceback.format_list(frames)))
    out.write("".join(exception))
    out.flush()
    if FAILURE_FILE:
        own = [f for f in frames if not is_internal(f) and "site-packages" not in f.filename]
        where = own[-1] if own else (frames[-1] if frames else None)
        with open(FAILURE_FILE, "w") as f:
            json.dump(
                {
                    "exception": " ".join(line.strip() for line in exception if line.strip()),
                    "location": f"{os.path.basename(where.filename)}:{where.lineno}" if where else None,
                },
                f,
            )


def main():
    os.dup2(sys.stdout.fileno(), sys.stderr.fileno())
    sdk = sdk_dir()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(Formatter(sdk))
    if HIDE_EXECUTOR:
        handler.addFilter(lambda record: not os.path.abspath(record.pathname).startswith(sdk))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    sys.argv[0] = "kfp.dsl.executor_main"
    if CODE:
        use_code(CODE)
    try:
        runpy.run_module("kfp.dsl.executor_main", run_name="__main__", alter_sys=True)
    except SystemExit:
        raise
    except BaseException as error:  # noqa: B902 - the component's failure, whatever it is
        report(error, sdk)
        if POST_MORTEM:
            import pdb

            pdb.post_mortem(error.__traceback__)
        sys.exit(1)


if __name__ == "__main__":
    main()
