"""A shadow test's evaluation: both models on the closed pairs, the statistics and the recommendation."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container, not_found
from app.api.openapi import operation
from app.api.schemas import ShadowEvaluation, ShadowQuery
from app.core.db.models import ModelRegistry
from app.shadow_tester.service import ShadowTester

bp = Blueprint("shadow", __name__, url_prefix="/api/shadow")


@operation(
    bp, "/<model_id>", summary="Evaluate a shadow model against the active one", tag="shadow",
    query=ShadowQuery, response=ShadowEvaluation,
)  # fmt: skip
def get_shadow_evaluation(model_id: str, query: ShadowQuery) -> ShadowEvaluation:
    c = container()
    with c.session() as session:
        if session.get(ModelRegistry, model_id) is None:
            raise not_found("model", model_id)
    result = ShadowTester(c).evaluate_shadow_model(model_id, query.min_samples)
    return ShadowEvaluation.model_validate(result.to_dict())
