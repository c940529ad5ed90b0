"""workers/keepalive.py: a process that dies is started again; a stop request ends it; a command
that cannot start is given up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.services import REPO
from workers import keepalive

# Writes its pid to a new line of the file, then sleeps until killed.
SLEEPER = "import os, sys, time; open(sys.argv[1], 'a').write(f'{os.getpid()}\\n'); time.sleep(600)"


def _pids(path: Path, count: int, seconds: float = 20.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = [int(p) for p in path.read_text().split()] if path.exists() else []
        if len(pids) >= count:
            return pids
        time.sleep(0.1)
    raise AssertionError(f"expected {count} starts, saw {path.read_text() if path.exists() else 'none'}")


def test_a_killed_process_is_restarted_and_sigterm_stops_it(tmp_path) -> None:
    pid_file = tmp_path / "pids"
    cmd = [sys.executable, "-m", "workers.keepalive", sys.executable, "-c", SLEEPER, str(pid_file)]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE)
    try:
        first = _pids(pid_file, 1)[0]
        os.kill(first, signal.SIGKILL)
        second = _pids(pid_file, 2)[1]
        assert second != first and proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM  # the child's own end, as a shell reports it
        assert b"was killed by SIGKILL" in proc.stderr.read()  # type: ignore[union-attr]
        time.sleep(0.5)
        assert len(_pids(pid_file, 2)) == 2  # not started again after the stop
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_command_that_cannot_start_is_given_up(monkeypatch) -> None:
    monkeypatch.setattr(keepalive, "START_RETRIES", 2)
    started = time.monotonic()
    assert keepalive.run([sys.executable, "-c", "raise SystemExit(3)"]) == 3
    assert time.monotonic() - started < 10
