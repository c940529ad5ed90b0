"""Shared fixtures: embedded (SQLite) and distributed (PostgreSQL + Redis + workers) containers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tests build their own settings; nothing from the developer's shell leaks in.
for _var in (
    "CLM_MODE",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "ARTIFACT_ROOT",
    "CLM_API_TOKEN",
):
    os.environ.pop(_var, None)

from app.bootstrap import Container, bootstrap, set_container  # noqa: E402
from app.core.dispatch import InlineDispatcher  # noqa: E402
from app.core.settings import Mode, Settings  # noqa: E402
from tests.services import (  # noqa: E402
    REDIS_BASE,
    create_database,
    drop_database,
    require_postgres,
    require_redis,
    service_env,
)

DATA_DIR = Path(__file__).resolve().parent / "data" / "ohlcv"
API_TOKEN = "test-token-not-a-secret"


@pytest.fixture
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture
def sqlite_container(tmp_path: Path) -> Iterator[Container]:
    """An embedded container: SQLite file, inline events, local artifacts."""
    settings = Settings(
        CLM_MODE=Mode.EMBEDDED,
        DATABASE_URL=f"sqlite:///{tmp_path / 'clm.sqlite'}",
        ARTIFACT_ROOT=str(tmp_path / "artifacts"),
        CLM_API_TOKEN=API_TOKEN,
    )
    container = bootstrap(settings, InlineDispatcher(), migrate=True)
    set_container(container)
    yield container
    set_container(None)
    container.dispose()


# ----------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database created and migrated for this test run, dropped afterwards."""
    require_postgres()
    from app.core.migrations import upgrade

    url = create_database()
    upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def redis_urls() -> dict[str, str]:
    """The test run's own Redis db numbers (broker N, results N+1; N = CLM_TEST_REDIS_DB, 9), flushed."""
    import redis

    base = int(os.environ.get("CLM_TEST_REDIS_DB", "9"))
    broker, backend = f"{REDIS_BASE}/{base}", f"{REDIS_BASE}/{base + 1}"
    require_redis(broker)
    for url in (broker, backend):
        redis.Redis.from_url(url).flushdb()
    return {"broker": broker, "backend": backend}


def _truncate_all(container: Container) -> None:
    from sqlalchemy import text

    from app.core.db.models import Base

    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with container.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def pg_settings(pg_url: str, redis_urls: dict[str, str], tmp_path: Path) -> Settings:
    return Settings(
        CLM_MODE=Mode.DISTRIBUTED,
        DATABASE_URL=pg_url,
        CELERY_BROKER_URL=redis_urls["broker"],
        CELERY_RESULT_BACKEND=redis_urls["backend"],
        ARTIFACT_ROOT=str(tmp_path / "artifacts"),
        CLM_API_TOKEN=API_TOKEN,
    )


@pytest.fixture
def pg_container(pg_settings: Settings) -> Iterator[Container]:
    """A distributed-mode container on the run's PostgreSQL database, emptied before each test.

    Its dispatcher is inline (records requests); tests that need workers use `worker_env`.
    """
    container = bootstrap(pg_settings, InlineDispatcher())
    _truncate_all(container)
    set_container(container)
    yield container
    set_container(None)
    container.dispose()


@pytest.fixture
def worker_env(pg_settings: Settings) -> dict[str, str]:
    """Environment for real worker processes sharing the test's database, broker and artifacts."""
    import redis

    for url in (pg_settings.broker_url, pg_settings.result_backend):
        redis.Redis.from_url(url).flushdb()
    return service_env(
        pg_settings.database_url, pg_settings.broker_url, pg_settings.result_backend, pg_settings.artifact_root
    )
