"""Migrations and models agree; the database itself enforces one ACTIVE/SHADOW per type."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.core.db.models import Base
from app.core.migrations import downgrade, upgrade
from tests.services import create_database, drop_database, require_postgres

pytestmark = pytest.mark.integration


def _diff(url: str) -> list:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    return diff


def test_migrations_match_models_on_postgresql() -> None:
    require_postgres()
    url = create_database("clm_schema")
    try:
        upgrade(url)
        assert _diff(url) == []
        downgrade(url)  # the way back works too
        upgrade(url)
        assert _diff(url) == []
    finally:
        drop_database(url)


def test_migrations_match_models_on_sqlite(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.sqlite'}"
    upgrade(url)
    assert _diff(url) == []


def _model_row(model_id: str, status: str, version: str) -> dict:
    return {
        "model_id": model_id, "model_type": "xgboost", "version": version, "status": status,
        "metrics": "{}", "created_at": datetime(2025, 1, 1), "file_path": f"models/{model_id}",
    }  # fmt: skip


@pytest.mark.parametrize("status", ["ACTIVE", "SHADOW"])
def test_postgresql_refuses_a_second_active_or_shadow_model(pg_container, status: str) -> None:
    insert = sa.text(
        "INSERT INTO model_registry (model_id, model_type, version, status, metrics, created_at, file_path) "
        "VALUES (:model_id, :model_type, :version, :status, CAST(:metrics AS JSONB), :created_at, :file_path)"
    )
    with pg_container.engine.begin() as conn:
        conn.execute(insert, _model_row("xgb_v1", status, "1"))
        conn.execute(insert, _model_row("xgb_v0", "RETIRED", "0"))  # other statuses are free
    with pytest.raises(sa.exc.IntegrityError) as info, pg_container.engine.begin() as conn:
        conn.execute(insert, _model_row("xgb_v2", status, "2"))
    assert "uq_model_registry_one_" in str(info.value)


def test_inserts_in_the_specifications_shape_take_the_databases_time(pg_container) -> None:
    """Issue 18, defect 13: `created_at TIMESTAMP DEFAULT NOW()` in the specification; without a server
    default, another tool's INSERT without created_at was a NOT NULL violation."""
    inserts = [
        "INSERT INTO model_registry (model_id, model_type, version, status, metrics, file_path) "
        "VALUES ('xgboost_v1', 'xgboost', '1', 'RETIRED', '{}', 'models/xgboost_v1')",
        "INSERT INTO drift_events (detected_at, drift_type, severity) VALUES (now(), 'feature', 'low')",
        "INSERT INTO policies (version, document) VALUES (1, '{}')",
    ]
    with pg_container.engine.begin() as conn:
        before = conn.execute(sa.text("SELECT timezone('utc', now())")).scalar()
        for insert in inserts:
            conn.execute(sa.text(insert))
        stamped = [
            conn.execute(sa.text(f"SELECT created_at FROM {table}")).scalar()
            for table in ("model_registry", "drift_events", "policies")
        ]
    assert all(stamp == before for stamp in stamped), (before, stamped)  # one transaction: one now()
