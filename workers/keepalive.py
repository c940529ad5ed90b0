"""Keep one process of the stack running: restart it when it dies, stop it when asked.

`python -m workers.keepalive CMD [ARGS...]` runs CMD and starts it again whenever it exits
without having been asked to stop (a SIGKILL, an OOM kill, a crash), after a short backoff.
Every Procfile line runs under it, so honcho, which stops the whole stack as soon as one of
its processes exits, only sees a process end when the stack is being stopped.

SIGTERM, SIGINT and SIGHUP are passed on to CMD and end the loop. A command that keeps
failing within `START_SECONDS` of starting (a bad setting, a missing variable) is given up
after `START_RETRIES` tries, with its exit status, as supervisord's `startsecs`/`startretries`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

START_SECONDS = 10.0  # a run shorter than this is a failed start
START_RETRIES = 5
MAX_BACKOFF_SECONDS = 30.0


def _say(name: str, message: str) -> None:
    print(f"keepalive[{name}]: {message}", file=sys.stderr, flush=True)


def _describe(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def run(command: list[str]) -> int:
    name = command[0].rsplit("/", 1)[-1] + (f" {command[1]}" if len(command) > 1 else "")
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def _stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop)

    failed_starts = 0
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)
        returncode = child.wait()
        if stopping:
            return returncode
        uptime = time.monotonic() - started
        failed_starts = failed_starts + 1 if uptime < START_SECONDS else 0
        if failed_starts >= START_RETRIES:
            _say(name, f"{_describe(returncode)} {failed_starts} times soon after starting; giving up")
            return returncode if returncode > 0 else 1
        delay = min(MAX_BACKOFF_SECONDS, 2.0**failed_starts)
        _say(name, f"pid {child.pid} {_describe(returncode)} after {uptime:.0f} s; restarting in {delay:.0f} s")
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.2)
        if stopping:
            return returncode


def main() -> None:
    command = sys.argv[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        sys.exit("usage: python -m workers.keepalive CMD [ARGS...]")
    returncode = run(command)
    sys.exit(128 - returncode if returncode < 0 else returncode)  # a signal's end as the shell reports it


if __name__ == "__main__":
    main()
