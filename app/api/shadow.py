"""A shadow test's evaluation: both models on the closed pairs, the statistics and the recommendation."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import select

from app.api.common import container, not_found
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.schemas import ShadowEvaluation, ShadowQuery
from app.core.db.models import ModelRegistry
from app.model_registry import ACTIVE, SHADOW
from app.shadow_tester.service import ShadowTester

bp = Blueprint("shadow", __name__, url_prefix="/api/shadow")


@operation(
    bp, "/<model_id>", summary="Evaluate a shadow model against the active one", tag="shadow",
    query=ShadowQuery, response=ShadowEvaluation, conflict=True,
)  # fmt: skip
def get_shadow_evaluation(model_id: str, query: ShadowQuery) -> ShadowEvaluation:
    """The evaluation of the shadow test of `model_id` (a SHADOW model, or a former one whose
    test is history). An ACTIVE model is the baseline that shadows are compared against, not a
    shadow: it answers 409, naming its type's current shadow challengers in `details`. Beside the
    per-pair figures that decide, `book` scores both models on the same pairs as staggered books
    with the project's scoring (fees on position changes, DA on traded rows, share traded, and
    shadow - active with its block-bootstrap 95 % interval); it is reported, not decided on.
    """
    c = container()
    with c.session() as session:
        record = session.get(ModelRegistry, model_id)
        if record is None:
            raise not_found("model", model_id)
        if record.status == ACTIVE:
            challengers = list(
                session.scalars(
                    select(ModelRegistry.model_id)
                    .where(ModelRegistry.model_type == record.model_type, ModelRegistry.status == SHADOW)
                    .order_by(ModelRegistry.model_id)
                )
            )
            see = (
                "evaluate its shadow challenger(s) instead: " + ", ".join(f"/api/shadow/{m}" for m in challengers)
                if challengers
                else f"no {record.model_type} model is in shadow testing now"
            )
            raise ApiError(
                409,
                f"model {model_id!r} is ACTIVE: it is the baseline that shadow models are compared against, "
                f"not a shadow model; {see}",
                {"model_id": model_id, "status": ACTIVE, "shadow_challengers": challengers},
            )
    return ShadowEvaluation.model_validate(ShadowTester(c).report(model_id, query.min_samples))
