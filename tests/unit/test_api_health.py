from __future__ import annotations

from app.api import create_app
from app.bootstrap import bootstrap
from app.core.dispatch import InlineDispatcher
from app.core.migrations import code_heads
from app.core.settings import Mode, Settings


def test_health_reports_database_and_broker(sqlite_container) -> None:
    client = create_app(sqlite_container).test_client()
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["database"]["ok"] is True and body["database"]["dialect"] == "sqlite"
    assert body["broker"]["ok"] is True


def test_health_is_503_when_the_broker_is_unreachable(tmp_path) -> None:
    settings = Settings(
        CLM_MODE=Mode.DISTRIBUTED,
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite'}",
        CELERY_BROKER_URL="redis://127.0.0.1:1/0",  # nothing listens on port 1
        ARTIFACT_ROOT=str(tmp_path / "a"),
    )
    container = bootstrap(settings, InlineDispatcher(), migrate=True)
    response = create_app(container).test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded" and body["broker"]["ok"] is False
    assert "ConnectionError" in body["broker"]["error"]


def test_errors_are_json_without_tracebacks(sqlite_container) -> None:
    client = create_app(sqlite_container).test_client()
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.is_json and response.get_json()["status"] == 404
    assert b"Traceback" not in response.data


def test_an_unreachable_database_is_a_503_not_a_500(tmp_path) -> None:
    """PostgreSQL down, restarting or out of connections: 503 with Retry-After, JSON, no trace."""
    settings = Settings(
        CLM_MODE=Mode.DISTRIBUTED,
        DATABASE_URL="postgresql+psycopg2://postgres@127.0.0.1:1/nothing",  # nothing listens on port 1
        CELERY_BROKER_URL="redis://127.0.0.1:1/0",
        ARTIFACT_ROOT=str(tmp_path / "a"),
    )
    container = bootstrap(settings, InlineDispatcher())
    client = create_app(container).test_client()
    response = client.get("/api/models")
    assert response.status_code == 503, response.get_json()
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["error"].startswith("database unavailable") and body["kind"] == "OperationalError"
    assert b"Traceback" not in response.data and b"127.0.0.1:1" not in response.data
    container.dispose()


def _bare_container(tmp_path, revision: str | None):
    """A container on a SQLite file migrated only to `revision` (None: never migrated)."""
    from app.core.migrations import upgrade

    url = f"sqlite:///{tmp_path / 'bare.sqlite'}"
    if revision:
        upgrade(url, revision)
    settings = Settings(CLM_MODE=Mode.EMBEDDED, DATABASE_URL=url, ARTIFACT_ROOT=str(tmp_path / "a"))
    return bootstrap(settings, InlineDispatcher())


def test_health_reports_an_unmigrated_database(tmp_path) -> None:
    container = _bare_container(tmp_path, None)
    response = create_app(container).test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded" and body["database"]["ok"] is False
    assert body["database"]["schema"]["state"] == "unmigrated" and body["database"]["schema"]["revision"] == []
    assert "run migrations" in body["database"]["error"] and "db upgrade" in body["database"]["error"]
    container.dispose()


def test_health_reports_an_outdated_database(tmp_path) -> None:
    container = _bare_container(tmp_path, "0004_shadow_no_fk")
    body = create_app(container).test_client().get("/health").get_json()
    schema = body["database"]["schema"]
    assert body["status"] == "degraded" and schema["state"] == "outdated"
    assert schema["revision"] == ["0004_shadow_no_fk"] and schema["head"] == list(code_heads())
    container.dispose()


def test_health_reports_a_current_schema(sqlite_container) -> None:
    body = create_app(sqlite_container).test_client().get("/health").get_json()
    assert body["database"]["schema"]["state"] == "current"


def test_a_missing_table_is_a_500_that_says_to_migrate(tmp_path) -> None:
    container = _bare_container(tmp_path, None)
    response = create_app(container).test_client().get("/api/models")
    assert response.status_code == 500
    body = response.get_json()
    assert body["kind"] == "SchemaMissing" and "run migrations" in body["error"]
    assert b"Traceback" not in response.data
    container.dispose()
