"""rl_decisions: every RL decision served over the API, and the outcome that applied it

`POST /api/rl/meta-strategy/decision` and `POST /api/rl/position-sizing/decision` record who
decided what with which version; `POST /api/outcomes` names the decision ids, and the first
outcome sets `trade_id` (an outcome for a decision already applied is refused).

Revision ID: 0007_rl_decisions
Revises: 0006_timestamp_defaults
Create Date: 2026-11-27 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_rl_decisions"
down_revision: str | Sequence[str] | None = "0006_timestamp_defaults"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # The timestamp default of schema 0006 (PostgreSQL; the embedded SQLite store is written by the application only).
    now = sa.text("timezone('utc', now())") if op.get_bind().dialect.name == "postgresql" else None
    op.create_table(
        "rl_decisions",
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("rl_type", sa.String(length=50), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False, server_default=now),
        sa.Column("state", _JSON, nullable=False),
        sa.Column("state_key", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("halted", sa.Boolean(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("detail", _JSON, nullable=False),
        sa.Column("trade_id", sa.String(length=255), nullable=True),
        sa.Column("applied_at", sa.DateTime(), nullable=True),
        sa.Column("outcome_event_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("decision_id", name=op.f("pk_rl_decisions")),
    )
    op.create_index(op.f("ix_rl_decisions_decided_at"), "rl_decisions", ["decided_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_rl_decisions_decided_at"), table_name="rl_decisions")
    op.drop_table("rl_decisions")
