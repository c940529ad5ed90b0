"""Write-time columns default to the database's now (UTC), as the specification's tables give

`created_at TIMESTAMP DEFAULT NOW()`: a row written by another tool in the specification's
shape (say `INSERT INTO model_registry (model_id, model_type, version, status, metrics,
file_path) VALUES (...)`) was refused with a NOT NULL violation. The application still writes
these columns itself. PostgreSQL only: SQLite cannot change a column's default without
rebuilding the table, and the embedded SQLite store is written by the application alone.

Revision ID: 0006_timestamp_defaults
Revises: 0005_open_prediction_logs
Create Date: 2026-12-05 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_timestamp_defaults"
down_revision: str | Sequence[str] | None = "0005_open_prediction_logs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW_UTC = sa.text("timezone('utc', now())")

COLUMNS = [
    ("model_registry", "created_at"),
    ("model_status_history", "changed_at"),
    ("shadow_test_results", "created_at"),
    ("rl_versions", "created_at"),
    ("rl_agent_state", "updated_at"),
    ("rl_applied_updates", "applied_at"),
    ("drift_events", "created_at"),
    ("model_performance_logs", "created_at"),
    ("prediction_logs", "created_at"),
    ("retraining_jobs", "created_at"),
    ("datasets", "created_at"),
    ("events", "created_at"),
    ("event_deliveries", "updated_at"),
    ("policies", "created_at"),
    ("system_flags", "updated_at"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, server_default=NOW_UTC)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, server_default=None)
