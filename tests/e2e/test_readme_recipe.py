"""The README's distributed recipe from a fresh copy of the tree, against PostgreSQL and Redis.

`.env` from the example plus the two values the README says to edit (and this run's database,
broker and ports), `make stack` with a shell whose DATABASE_URL points elsewhere (the migration
must follow .env), a retraining through the API, then a GPU worker killed by SIGKILL: the
supervisor starts it again and every other process stays up. Ctrl-C stops the stack cleanly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.api_fixtures import TOKEN_HEADER
from tests.conftest import API_TOKEN
from tests.e2e.processes import free_port, http_json
from tests.services import REPO, create_database, drop_database

pytestmark = pytest.mark.e2e

SYNTHETIC = {"source": "synthetic", "symbols": ["BTC/USDT"], "timeframe": "1h", "lookback_days": 120, "seed": 3}


def _fresh_copy(target: Path) -> None:
    """The working tree as a clone would have it (tracked and new files, nothing ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to((REPO / ".venv").resolve())  # scripts/setup_venv.sh would link the same cache


def _descendants(pid: int) -> dict[int, str]:
    """Every process under `pid`, with its command line."""
    out = subprocess.run(["ps", "-ww", "-e", "-o", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines() if len(line.split(None, 2)) == 3]
    children: dict[int, list[tuple[int, str]]] = {}
    for child, parent, args in rows:
        children.setdefault(int(parent), []).append((int(child), args))
    found, todo = {}, [pid]
    while todo:
        for child, args in children.get(todo.pop(), []):
            found[child] = args
            todo.append(child)
    return found


def _gpu_worker(stack_pid: int) -> int | None:
    return next(
        (
            pid
            for pid, args in _descendants(stack_pid).items()
            if "-Q gpu" in args and "keepalive" not in args and not args.startswith(("sh", "/bin/sh"))
        ),
        None,
    )


def _wait(what: str, check, seconds: float, log: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1.0)
    pytest.fail(f"{what} within {seconds:.0f}s\n--- stack log ---\n{log.read_text()[-6000:]}", pytrace=False)


def test_readme_recipe_and_a_supervised_stack(redis_urls, tmp_path) -> None:
    clone = tmp_path / "clone"
    _fresh_copy(clone)
    database_url = create_database("clm_recipe")
    api_port, flower_port = free_port(), free_port()
    env_file = (clone / ".env.distributed.example").read_text()
    assert "\nCLM_API_TOKEN=" in env_file and "\nFLOWER_BASIC_AUTH=" in env_file  # present, to be edited
    env_file = env_file.replace("CLM_API_TOKEN=replace-with-a-long-random-token", f"CLM_API_TOKEN={API_TOKEN}")
    env_file = env_file.replace("FLOWER_BASIC_AUTH=operator:replace-with-a-password", "FLOWER_BASIC_AUTH=op:pw")
    # This run's services instead of the defaults (later lines win).
    env_file += (
        f"DATABASE_URL={database_url}\nCELERY_BROKER_URL={redis_urls['broker']}\n"
        f"CELERY_RESULT_BACKEND={redis_urls['backend']}\nCLM_API_PORT={api_port}\nCLM_FLOWER_PORT={flower_port}\n"
    )
    (clone / ".env").write_text(env_file)
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("CLM_", "CELERY_", "FLOWER_"))}
    shell["DATABASE_URL"] = f"sqlite:///{tmp_path / 'wrong.sqlite'}"  # what the shell says; .env must win
    log = tmp_path / "stack.log"
    base = f"http://127.0.0.1:{api_port}"
    with open(log, "wb") as out:
        stack = subprocess.Popen(
            ["make", "stack"], cwd=clone, env=shell, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        health = _wait("the API did not report a healthy, migrated stack", lambda: _health(base), 240, log)
        assert health["database"]["dialect"] == "postgresql" and health["database"]["schema"]["state"] == "current"
        assert not (tmp_path / "wrong.sqlite").exists() and not (clone / "var" / "clm.sqlite").exists()

        body = {"kind": "partial", "model_types": ["naive"], "reason": "recipe", "data": SYNTHETIC}
        status, accepted = http_json(f"{base}/api/jobs/retraining", "POST", body, TOKEN_HEADER)
        assert status == 202, accepted
        job = _wait("the retraining did not finish", lambda: _finished(base, accepted["url"]), 240, log)
        assert job["status"] == "completed", job

        gpu = _wait("no GPU worker under the stack", lambda: _gpu_worker(stack.pid), 120, log)
        others = {pid: args for pid, args in _descendants(stack.pid).items() if pid != gpu}
        os.kill(gpu, signal.SIGKILL)
        started = time.monotonic()
        restarted = _wait("the killed GPU worker was not started again", lambda: _new_gpu(stack.pid, gpu), 120, log)
        print(f"GPU worker {gpu} killed; {restarted} running {time.monotonic() - started:.1f}s later")
        assert stack.poll() is None, "the stack stopped with its GPU worker"
        still = _descendants(stack.pid)
        lost = {pid: args for pid, args in others.items() if pid not in still and "-Q gpu" not in args}
        assert not lost, f"processes gone with the GPU worker: {lost}"
        assert _health(base), "the API stopped answering"
        assert "was killed by SIGKILL" in log.read_text()
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGINT)  # Ctrl-C in the terminal running `make stack`
        try:
            stack.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()
            pytest.fail(f"the stack did not stop on Ctrl-C:\n{log.read_text()[-4000:]}")
        drop_database(database_url)
    assert not _descendants(stack.pid)


def _health(base: str) -> dict | None:
    try:
        status, body = http_json(f"{base}/health")
    except OSError:
        return None
    return body if status == 200 and body.get("status") == "ok" else None


def _finished(base: str, url: str) -> dict | None:
    status, job = http_json(f"{base}{url}")
    return job if status == 200 and job["status"] not in ("pending", "running") else None


def _new_gpu(stack_pid: int, killed: int) -> int | None:
    pid = _gpu_worker(stack_pid)
    return pid if pid and pid != killed else None
