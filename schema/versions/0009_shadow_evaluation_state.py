"""shadow_evaluation_state: a shadow test's running statistics, so an evaluation reads only new pairs

One row per shadow test: the statistics of its first `pairs` closed pairs in time order up to
(`last_timestamp`, `last_id`), and the sum of their ids (with `pairs`, the check that the set is
unchanged). Dropping it loses nothing: the next evaluation recomputes it from the pairs.

Revision ID: 0009_shadow_evaluation_state
Revises: 0008_alert_acknowledgements
Create Date: 2026-12-05 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_shadow_evaluation_state"
down_revision: str | Sequence[str] | None = "0008_alert_acknowledgements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    now = sa.text("timezone('utc', now())") if op.get_bind().dialect.name == "postgresql" else None
    op.create_table(
        "shadow_evaluation_state",
        sa.Column("shadow_model_id", sa.String(length=255), nullable=False),
        sa.Column("pairs", sa.BigInteger(), nullable=False),
        sa.Column("id_sum", sa.BigInteger(), nullable=False),
        sa.Column("last_timestamp", sa.DateTime(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("stats", _JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False, server_default=now),
        sa.PrimaryKeyConstraint("shadow_model_id", name=op.f("pk_shadow_evaluation_state")),
    )


def downgrade() -> None:
    op.drop_table("shadow_evaluation_state")
