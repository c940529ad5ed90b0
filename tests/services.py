"""Real services for the tests: PostgreSQL, Redis and Celery worker processes.

A missing service is a failure that says how to start it, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("CLM_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("CLM_TEST_REDIS_URL", "redis://127.0.0.1:6379")

START_PG = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'


def require_postgres() -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({type(exc).__name__}). Start it with:\n  {START_PG}",
            pytrace=False,
        )
    finally:
        engine.dispose()


def require_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        pytest.fail(
            f"Redis is not reachable at {url} ({type(exc).__name__}). Start it with:\n  {START_REDIS}", pytrace=False
        )


def create_database(prefix: str = "clm_test") -> str:
    """A new, empty PostgreSQL database; returns its URL."""
    import sqlalchemy as sa

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    import sqlalchemy as sa

    name = url.rsplit("/", 1)[1]
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def service_env(
    database_url: str, broker_url: str, backend_url: str, artifact_root: str, **extra: str
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CLM_MODE": "distributed",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "CELERY_RESULT_BACKEND": backend_url,
            "ARTIFACT_ROOT": artifact_root,
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(extra)
    return env


@contextmanager
def celery_worker(
    env: dict[str, str],
    queues: str = "default,cpu,gpu",
    pool: str = "solo",
    concurrency: int = 1,
    name: str | None = None,
    log_path: Path | None = None,
    wait_seconds: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery worker` process consuming `queues`; waits until it answers a ping."""
    node = name or f"test-{uuid.uuid4().hex[:6]}@%h"
    cmd = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "-Q", queues, "--pool", pool, "--concurrency", str(concurrency), "-n", node,
        "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    ]  # fmt: skip
    log_file = open(log_path or os.devnull, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_for_worker(env, proc, node, wait_seconds, log_path)
        yield proc
    finally:
        stop_process(proc)
        log_file.close()


def stop_process(proc: subprocess.Popen[bytes], grace_seconds: float = 20.0) -> None:
    """Terminate a child process, killing it if it does not stop within the grace period."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_worker(
    env: dict[str, str], proc: subprocess.Popen[bytes], node: str, wait_seconds: float, log_path: Path | None
) -> None:
    from celery import Celery

    client = Celery(broker=env["CELERY_BROKER_URL"], backend=env["CELERY_RESULT_BACKEND"])
    deadline = time.monotonic() + wait_seconds
    hostname_prefix = node.split("@")[0]
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log_path.read_text()[-3000:] if log_path and log_path.exists() else ""
                pytest.fail(f"celery worker exited with {proc.returncode}:\n{tail}", pytrace=False)
            replies = client.control.ping(timeout=1.0) or []
            if any(name.startswith(hostname_prefix) for reply in replies for name in reply):
                return
            time.sleep(0.3)
        pytest.fail(f"celery worker {node} did not answer a ping within {wait_seconds}s", pytrace=False)
    finally:
        client.close()
