"""prediction_logs: a partial index of the logs still open (no outcome yet)

Outcome resolution (`ModelSupervisor.resolve_outcomes`, every 15 minutes) asks for the open
logs in id order. Without this index PostgreSQL walks the primary key from the first id and
skips every resolved log, so each run read the whole table (at 200 predictions/s, tens of
millions of rows a day). The partial index holds only the open ones; shadow pairs have had
the same (`idx_outcome_null`) from the start. Built CONCURRENTLY on PostgreSQL, so a live
table keeps taking writes while it is built.

Revision ID: 0005_open_prediction_logs
Revises: 0004_shadow_no_fk
Create Date: 2026-11-26 01:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_open_prediction_logs"
down_revision: str | Sequence[str] | None = "0004_shadow_no_fk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHERE = sa.text("outcome IS NULL")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "idx_prediction_open",
            "prediction_logs",
            ["id"],
            postgresql_where=_WHERE,
            sqlite_where=_WHERE,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("idx_prediction_open", table_name="prediction_logs", postgresql_concurrently=True)
