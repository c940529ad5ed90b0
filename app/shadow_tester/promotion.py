"""A shadow test's decision, and the one place that carries it out.

The shadow tester decides (`ShadowDecision.of`: the evaluation's recommendation and the
policy's `auto_promote`); `carry_out` acts on the decision in one transaction, under the
registry's lock of the model type: a rejection marks the shadow REJECTED; a promotion is
announced (`shadow.promotion.recommended`) and, with auto-promotion on, carried out through
the registry (`model.retired`, `model.promoted`) and reported (`shadow.promoted`). The
events report what was done; no handler repeats it. With auto-promotion off, an operator
promotes from the recommendation (the alert module shows it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core.topics import ShadowPromoted, ShadowPromotionRecommended
from app.model_registry import ModelRegistry
from app.shadow_tester.stats import Recommendation, ShadowEvaluationResult

if TYPE_CHECKING:
    from app.core.container import Container


@dataclass(frozen=True)
class ShadowDecision:
    shadow_model_id: str
    model_type: str
    recommendation: Recommendation
    reason: str  # the evaluation's reasons, as the status history records them
    auto_promote: bool  # the policy's: promote now, or leave it to an operator
    active_model_id: str | None
    evaluation: dict[str, Any]  # the evaluation as the events carry it

    @classmethod
    def of(cls, model_type: str, result: ShadowEvaluationResult, auto_promote: bool) -> ShadowDecision:
        return cls(
            shadow_model_id=result.shadow_model_id,
            model_type=model_type,
            recommendation=result.recommendation,
            reason="; ".join(result.reasons),
            auto_promote=auto_promote,
            active_model_id=result.active_model_id,
            evaluation=result.to_dict(),
        )


def carry_out(container: Container, decision: ShadowDecision) -> bool:
    """Act on `decision` in one transaction; True when the shadow was promoted.

    Nothing happens when the model is no longer its type's SHADOW model (promoted, rejected
    or superseded meanwhile) or when the test goes on (CONTINUE_TESTING).
    """
    if decision.recommendation not in ("PROMOTE", "REJECT"):
        return False
    registry = ModelRegistry(container)
    promoted = False
    with container.session() as session:
        shadow = registry.current_shadow(session, decision.model_type)
        if shadow is None or shadow.model_id != decision.shadow_model_id:
            return False
        if decision.recommendation == "REJECT":
            registry.reject_model(decision.shadow_model_id, decision.reason, session=session)
            return False
        container.bus.publish(
            session,
            ShadowPromotionRecommended(
                model_id=decision.shadow_model_id,
                shadow_model_id=decision.shadow_model_id,
                model_type=decision.model_type,
                auto_promote=decision.auto_promote,
                metrics_comparison=metrics_comparison(decision.evaluation),
                evaluation=decision.evaluation,
            ),
        )
        if decision.auto_promote:
            registry.promote_shadow_to_active(decision.model_type, decision.reason, session=session)
            container.bus.publish(
                session,
                ShadowPromoted(
                    model_id=decision.shadow_model_id,
                    model_type=decision.model_type,
                    previous_model_id=decision.active_model_id,
                    final_metrics=decision.evaluation.get("shadow_metrics", {}),
                    evaluation=decision.evaluation,
                ),
            )
            promoted = True
    if promoted:
        registry.apply_retention(decision.model_type)
    return promoted


def metrics_comparison(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """The specification's `metrics_comparison`: both models' metrics and the test's verdict figures."""
    keys = ("improvement_pct", "pnl_difference", "p_value_better", "total_samples")
    return {"active": evaluation.get("active_metrics", {}), "shadow": evaluation.get("shadow_metrics", {})} | {
        k: evaluation.get(k) for k in keys
    }
