"""Which shadow pairs a closed trade names: exactly the pair it names, or none.

An outcome names its pairs by `shadow_test_id` (or `shadow_test_ids`; the prediction service
returns the id with each prediction) or by `prediction_id`, the served ACTIVE prediction:
its pair is the one recorded with that prediction (the pair's `active_prediction` keeps the
`prediction_id`). An id that names nothing is an `UnknownOutcomeTarget`, so the API refuses
the outcome and the handler closes nothing. Only an outcome that names no id falls back to
matching by symbol and time (`ShadowTester._match_by_time`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.db.models import PredictionLog, ShadowTestResult


class UnknownOutcomeTarget(LookupError):
    """An outcome names a shadow pair or prediction that does not exist; `field` names the key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _ids(field: str, values: Any) -> list[int]:
    try:
        return [int(value) for value in values]
    except (TypeError, ValueError):
        raise UnknownOutcomeTarget(field, f"{field}: {values!r} is not an id") from None


def named_pairs(session: Session, payload: Mapping[str, Any]) -> list[int] | None:
    """The pair ids the outcome names; None when it names no id (the caller may match by time).

    A named prediction without a pair (no SHADOW model was live) names an empty list.
    """
    shadow_ids: list[int] | None = None
    if payload.get("shadow_test_ids"):
        shadow_ids = _ids("shadow_test_ids", payload["shadow_test_ids"])
    elif payload.get("shadow_test_id") is not None:
        shadow_ids = _ids("shadow_test_id", [payload["shadow_test_id"]])
    if shadow_ids is not None:
        known = set(session.scalars(select(ShadowTestResult.id).where(ShadowTestResult.id.in_(shadow_ids))))
        unknown = [i for i in shadow_ids if i not in known]
        if unknown:
            field = "shadow_test_ids" if payload.get("shadow_test_ids") else "shadow_test_id"
            raise UnknownOutcomeTarget(field, f"{field}: no shadow test result with id {unknown[0]}")
    if payload.get("prediction_id") is None:
        return shadow_ids
    prediction_id = _ids("prediction_id", [payload["prediction_id"]])[0]
    pair = pair_of_prediction(session, prediction_id)
    if shadow_ids is None:
        return [] if pair is None else [pair]
    if pair is not None and pair not in shadow_ids:
        message = f"shadow_test_id: pair {pair} was recorded with prediction {prediction_id}, not {shadow_ids}"
        raise UnknownOutcomeTarget("shadow_test_id", message)
    return shadow_ids


def pair_of_prediction(session: Session, prediction_id: int) -> int | None:
    """The pair recorded with served prediction `prediction_id`; None if it had none.

    Several predictions of one model, symbol and candle have their own pairs: the pair is the
    one whose `active_prediction` carries this `prediction_id`. A pair written before pairs
    carried it is taken only when it is the one candidate.
    """
    served = session.get(PredictionLog, prediction_id)
    if served is None:
        raise UnknownOutcomeTarget("prediction_id", f"prediction_id: no prediction with id {prediction_id}")
    candidates = session.execute(
        select(ShadowTestResult.id, ShadowTestResult.active_prediction).where(
            ShadowTestResult.active_model_id == served.model_id,
            ShadowTestResult.symbol == served.symbol,
            ShadowTestResult.timestamp == served.timestamp,
        )
    ).all()
    carried = [(pair_id, (prediction or {}).get("prediction_id")) for pair_id, prediction in candidates]
    for pair_id, carried_id in carried:
        if carried_id == prediction_id:
            return int(pair_id)
    if len(carried) == 1 and carried[0][1] is None:
        return int(carried[0][0])
    return None
