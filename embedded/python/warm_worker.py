"""kfbox's warm worker: one long-lived Python per managed environment that has imported the SDK's
executor machinery once, from which each lightweight-component attempt is forked.

What the child gets is what `sh -ec '<the SDK's script>'` would have given a fresh `python3`:
the component's source in a fresh `mktemp -d` directory, kfbox's component runner run as
`__main__` with the SDK executor's arguments, the environment, working directory and standard
streams kfbox sends, a process group of its own (as kfbox gives a step it starts), default
signal handlers,
unbuffered output, and at its end Python's own shutdown (non-daemon threads joined, `atexit`
handlers run). This process never runs anything of the user's: every child starts from the
same state, so nothing one component does (globals, `sys.modules`, `os.environ`, open files,
threads) can be seen by the next.

Protocol (kfbox's side: sandbox/process/src/warm.rs). Standard input is a SOCK_SEQPACKET
socket to kfbox; this process prints `ready` once it has imported what it preloads. Each
message from kfbox carries three descriptors: a stream socket for the reply, and the write
ends of the step's stdout and stderr. kfbox writes the request (JSON: source, args, env, cwd,
runner) on the reply socket and shuts its side; this process answers `{"pid": N}` once the
child is forked and `{"exit": CODE}` or `{"signal": NUMBER}` when it ended (`{"error": TEXT}`
when it could not start one). kfbox closing its end of the control socket ends this process.
"""
import atexit
import io
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback

# What every child would import first anyway, in the SDK's runtime mode (`_KFP_RUNTIME=true`,
# as its script runs the executor): the executor's modules, and what kfbox's runner uses.
import argparse  # noqa: F401
import linecache  # noqa: F401
import logging  # noqa: F401

import kfp  # noqa: F401
# What `kfp.dsl.executor_main` imports, not that module itself: kfbox's runner runs it as
# `__main__`, and runpy warns when it was imported before.
import kfp.dsl.executor  # noqa: F401
import kfp.dsl.kfp_config  # noqa: F401
import kfp.dsl.utils  # noqa: F401


def run_child(request, out, err):
    """In the forked child: become the step, run the component, exit as Python would."""
    # The parent sets it too, so that kfbox can signal the group as soon as it has the pid.
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.dup2(out, 1)
    os.dup2(err, 2)
    # A fresh process has nothing else open: not this worker's sockets, nor other steps'.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()  # as a fresh interpreter reads TZ at its start
    os.chdir(request["cwd"])
    # As PYTHONUNBUFFERED=1 makes them at startup.
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding=sys.stdout.encoding, errors="strict", write_through=True
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding=sys.stderr.encoding, errors="backslashreplace", write_through=True
    )
    code = 0
    try:
        # The SDK's script: `program_path=$(mktemp -d)`, its source written there.
        tempfile.tempdir = None
        directory = tempfile.mkdtemp(prefix="tmp.")
        module = os.path.join(directory, "ephemeral_component.py")
        with open(module, "w") as f:
            f.write(request["source"])
        runner = request["runner"]
        sys.argv = [runner, "--component_module_path", module, *request["args"]]
        sys.path[0] = os.path.dirname(runner)
        runpy.run_path(runner, run_name="__main__")
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: B902 - whatever the component raised, as Python reports it
        traceback.print_exc()
        code = 1
    # Python's own shutdown: wait for non-daemon threads, then the exit handlers.
    try:
        threading._shutdown()
    except BaseException:  # noqa: B902
        pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: B902
            pass
    os._exit(code & 0xFF)


def main():
    control = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    # kfbox cancels its steps itself; Ctrl-C in its terminal is not for this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = {}
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                message, fds, _, _ = socket.recv_fds(control, 16, 3)
                if not message and not fds:
                    return  # kfbox is gone
                if len(fds) != 3:
                    for fd in fds:
                        os.close(fd)
                    continue
                start(fds, replies, control)
            else:
                os.read(wake_read, 4096)
                reap(replies)


def start(fds, replies, control):
    reply_fd, out, err = fds
    reply = socket.socket(fileno=reply_fd)
    try:
        data = bytearray()
        while chunk := reply.recv(1 << 16):
            data += chunk
        request = json.loads(data)
        pid = os.fork()
    except Exception as e:  # noqa: BLE001 - said to kfbox, which starts the step cold
        os.close(out)
        os.close(err)
        try:
            reply.sendall(json.dumps({"error": f"{type(e).__name__}: {e}"}).encode() + b"\n")
        except OSError:
            pass
        reply.close()
        return
    if pid == 0:
        reply.detach()
        control.detach()
        run_child(request, out, err)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it first, or has ended already
    os.close(out)
    os.close(err)
    try:
        reply.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    except OSError:
        pass
    replies[pid] = reply


def reap(replies):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        reply = replies.pop(pid, None)
        if reply is None:
            continue
        if os.WIFSIGNALED(status):
            answer = {"signal": os.WTERMSIG(status)}
        else:
            answer = {"exit": os.waitstatus_to_exitcode(status)}
        try:
            reply.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass
        reply.close()


if __name__ == "__main__":
    main()
