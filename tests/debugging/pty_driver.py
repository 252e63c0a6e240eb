"""Drive a command through a pseudo-terminal, as a person at a terminal would.

Usage: pty_driver.py PROMPT ANSWER... -- COMMAND...

Each time PROMPT appears in what the command printed since the last answer, the next ANSWER
(and a newline) is typed. Everything the command printed goes to stdout; the exit status is the
command's. Gives up after 60 s.
"""
import os
import pty
import select
import sys
import time


def main():
    split = sys.argv.index("--")
    prompt, answers, command = sys.argv[1].encode(), sys.argv[2:split], sys.argv[split + 1 :]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    seen, pending, deadline = b"", b"", time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        pending += chunk
        if prompt in pending and answers:
            pending = b""
            os.write(fd, answers.pop(0).encode() + b"\n")
    sys.stdout.write(seen.decode(errors="replace"))
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
