"""alert_acknowledgements: who acknowledged which alert occurrence, and when

Alerts are derived from the tables (`app.operations.alerts`); an operator acknowledges one
occurrence with `POST /api/alerts/<id>/ack` or `clm alerts ack <id>`, and the dashboard, the
API and the CLI show it as acknowledged. The first acknowledgement stands (a repeat changes nothing).

Revision ID: 0008_alert_acknowledgements
Revises: 0007_rl_decisions
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_alert_acknowledgements"
down_revision: str | Sequence[str] | None = "0007_rl_decisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The timestamp default of schema 0006 (PostgreSQL; the embedded SQLite store is written by the application only).
    now = sa.text("timezone('utc', now())") if op.get_bind().dialect.name == "postgresql" else None
    op.create_table(
        "alert_acknowledgements",
        sa.Column("alert_id", sa.String(length=32), nullable=False),
        sa.Column("alert_key", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=False, server_default=now),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alert_acknowledgements")),
    )
    op.create_index(
        op.f("ix_alert_acknowledgements_acknowledged_at"), "alert_acknowledgements", ["acknowledged_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_acknowledgements_acknowledged_at"), table_name="alert_acknowledgements")
    op.drop_table("alert_acknowledgements")
