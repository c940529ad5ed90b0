"""shadow_test_results without foreign keys to model_registry

The specification's table has none. Checked per row, the two keys took half of a batched
COPY's server time (each row looks up and key-share-locks two registry rows); the shadow
tester now checks the model ids once per batch instead (one query, a clear error naming an
unknown id), and registry rows are never deleted.

Revision ID: 0004_shadow_no_fk
Revises: 0003_rl_experience
Create Date: 2026-11-25 22:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_shadow_no_fk"
down_revision: str | Sequence[str] | None = "0003_rl_experience"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = (
    ("fk_shadow_test_results_active_model_id_model_registry", "active_model_id"),
    ("fk_shadow_test_results_shadow_model_id_model_registry", "shadow_model_id"),
)


def upgrade() -> None:
    with op.batch_alter_table("shadow_test_results") as batch:
        for name, _ in _KEYS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("shadow_test_results") as batch:
        for name, column in _KEYS:
            batch.create_foreign_key(name, "model_registry", [column], ["model_id"])
