"""Compile the pipeline (or one component) a Python file defines, for `kfbox run FILE.py`.

kfbox runs this with its managed kfp SDK, in a process of its own: the user's code is imported
here, never into kfbox.

Usage: compile_pipeline.py FILE.py OUT.yaml REPORT.json [--pipeline NAME | --component NAME]
       compile_pipeline.py --serve   (compiles on request; see `serve`)

Exit status: 0 compiled (REPORT.json says what); 3 the file raised while it was imported or
compiled (REPORT.json holds its traceback); 4 no single pipeline or component answers the
choice (REPORT.json says why). Whatever the file prints, warnings included, is its own.
"""
import importlib.util
import inspect
import json
import os
import sys
import traceback

USER_CODE_RAISED = 3
NO_CHOICE = 4


def user_traceback(error):
    """The traceback of `error` without this script's frames and the import machinery's."""
    frames = traceback.extract_tb(error.__traceback__)
    kept = [
        frame
        for frame in frames
        if frame.filename != __file__ and not frame.filename.startswith("<frozen importlib")
    ]
    text = "Traceback (most recent call last):\n" if kept else ""
    text += "".join(traceback.format_list(kept))
    text += "".join(traceback.format_exception_only(type(error), error))
    return text


def load(path):
    """Import the file as a module named after it, its directory first on sys.path, as
    `python FILE.py` would find its neighbours."""
    directory = os.path.dirname(path)
    sys.path.insert(0, directory)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.argv = [path]
    spec.loader.exec_module(module)
    return module


def function_of(obj):
    return getattr(obj, "pipeline_func", None) or getattr(obj, "python_func", None)


def candidates(module, kind):
    """Pipelines (`kind` "pipeline") or components the module holds, by Python name: those it
    defines itself, or, if it defines none, those it imports."""
    from kfp.dsl import base_component, graph_component

    def wanted(obj):
        if not isinstance(obj, base_component.BaseComponent):
            return False
        return isinstance(obj, graph_component.GraphComponent) == (kind == "pipeline")

    found = {name: obj for name, obj in vars(module).items() if wanted(obj)}
    own = {
        name: obj
        for name, obj in found.items()
        if getattr(function_of(obj), "__module__", None) == module.__name__
    }
    return own or found


def choose(module, kind, wanted_name):
    found = candidates(module, kind)
    if wanted_name is None:
        if len(found) == 1:
            return next(iter(found.items()))
        if not found:
            raise LookupError(
                "defines no @dsl.pipeline\nhint: run one of its components with --component NAME"
                if kind == "pipeline"
                else "defines no component"
            )
        raise LookupError(
            f"defines {len(found)} {kind}s ({', '.join(sorted(found))})\n"
            f"hint: choose one with --{kind} NAME"
        )
    for name, obj in found.items():
        if wanted_name in (name, obj.name):
            return name, obj
    listed = ", ".join(sorted(found)) or "none"
    raise LookupError(f"defines no {kind} named `{wanted_name}` (it defines: {listed})")


def local_modules(directory):
    """Python files under `directory` that the compile loaded, outside any environment."""
    prefixes = {os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix)}
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        path = os.path.realpath(path)
        if path.startswith(directory + os.sep) and not any(path.startswith(p) for p in prefixes):
            files.add(path)
    return sorted(files)


def functions(directory):
    """Where each lightweight component's function is defined: its `def` line, by function
    name (the name the SDK's executor is given), for components of local modules."""
    from kfp.dsl import python_component

    found = {}
    for module in list(sys.modules.values()):
        path = os.path.realpath(getattr(module, "__file__", None) or "")
        if not path.startswith(directory + os.sep):
            continue
        for obj in list(vars(module).values()):
            if not isinstance(obj, python_component.PythonComponent):
                continue
            func = obj.python_func
            try:
                lines, first = inspect.getsourcelines(func)
            except (OSError, TypeError):
                continue
            offset = next(
                (i for i, line in enumerate(lines) if line.lstrip().startswith("def ")), 0
            )
            found.setdefault(
                func.__name__,
                {"file": os.path.realpath(inspect.getsourcefile(func)), "def_line": first + offset},
            )
    return found


def fail(report, status, text):
    with open(report, "w") as f:
        json.dump({"error": text}, f)
    sys.exit(status)


def compile_file(path, out, report, kind, wanted_name):
    """Compile as the usage says; exits with the status it describes."""
    directory = os.path.realpath(os.path.dirname(path))
    try:
        module = load(path)
    except BaseException as error:  # noqa: B902 - whatever the user's code raised, SystemExit too
        fail(report, USER_CODE_RAISED, user_traceback(error))
    try:
        name, chosen = choose(module, kind, wanted_name)
    except LookupError as why:
        fail(report, NO_CHOICE, why.args[0])
    from kfp import compiler

    try:
        compiler.Compiler().compile(chosen, out)
    except Exception as error:
        fail(report, USER_CODE_RAISED, user_traceback(error))
    with open(report, "w") as f:
        json.dump(
            {
                "name": name,
                "kind": kind,
                "modules": local_modules(directory),
                "functions": functions(directory),
            },
            f,
        )
    sys.exit(0)


def serve():
    """`--serve` (`kfbox run --watch`): the SDK imported once, then one compile per request,
    each in a process forked for it, so that nothing of the user's code outlives its compile.
    A request is a JSON line on stdin (`file`, `out`, `report`, `kind`, `name`); the answer is
    a line with the compile's exit status."""
    from kfp import compiler, dsl  # noqa: F401 - the slow imports, done once

    for line in sys.stdin:
        request = json.loads(line)
        child = os.fork()
        if child == 0:
            # What the user's code prints must not reach the answers.
            os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
            status = 1
            try:
                compile_file(
                    request["file"], request["out"], request["report"], request["kind"], request["name"]
                )
            except SystemExit as exit:
                status = exit.code if isinstance(exit.code, int) else 1
            finally:
                os._exit(status)
        _, status = os.waitpid(child, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


def main():
    if sys.argv[1:] == ["--serve"]:
        serve()
        return
    path, out, report = (os.path.abspath(a) for a in sys.argv[1:4])
    kind, wanted_name = "pipeline", None
    if len(sys.argv) == 6:
        kind, wanted_name = sys.argv[4].lstrip("-"), sys.argv[5]
    compile_file(path, out, report, kind, wanted_name)


if __name__ == "__main__":
    main()
