"""rl_applied_updates keeps the experience: version, state and action of each applied trade

So a saved RL version can compare the agent's winrate with a random policy's on the same
trades (app.rl.baseline). Rows written before this revision have NULLs and are left out.

Revision ID: 0003_rl_experience
Revises: 0002_candle_coverage
Create Date: 2026-11-25 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_rl_experience"
down_revision: str | Sequence[str] | None = "0002_candle_coverage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rl_applied_updates") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("state_key", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("action", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rl_applied_updates") as batch:
        batch.drop_column("action")
        batch.drop_column("state_key")
        batch.drop_column("version")
