"""Predictions for the trading engine: the ACTIVE model answers; the SHADOW model is recorded beside it."""

from __future__ import annotations

import pandas as pd
from flask import Blueprint, current_app

from app.api.common import container, halt_view
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.request_metrics import observe_prediction
from app.api.schemas import PredictionOut, PredictionRequest
from app.core.container import Container
from app.data_pipeline.features import warmup_rows
from app.data_pipeline.validation import CandleValidationError, validate_candles
from app.forecasters import MODEL_TYPES
from app.prediction import (
    CANDLE_COLUMNS,
    InsufficientHistoryError,
    ModelIntegrityError,
    NoActiveModelError,
    PredictionService,
)

bp = Blueprint("predictions", __name__, url_prefix="/api/predictions")


@operation(
    bp, "", "POST", summary="Predict return, direction and confidence for a symbol", tag="predictions",
    body=PredictionRequest, response=PredictionOut, auth=True, conflict=True,
)  # fmt: skip
def post_prediction(body: PredictionRequest) -> PredictionOut:
    """Logged as a prediction (both models) and published as `ai.signal.generated`."""
    c = container()
    if body.model_type is not None and body.model_type not in MODEL_TYPES:
        reason = f"unknown model type; known: {sorted(MODEL_TYPES)}"
        raise ApiError(422, "invalid body", [{"field": "body.model_type", "reason": reason}])
    candles = _validated(c, body) if body.candles is not None else None
    try:
        prediction = PredictionService(c, body.model_type).predict(body.symbol, candles)
    except NoActiveModelError as exc:
        raise ApiError(409, str(exc)) from None
    except ModelIntegrityError as exc:  # the artifact changed on disk: not the request's fault
        raise ApiError(503, str(exc), {"model_id": exc.model_id}) from None
    except InsufficientHistoryError as exc:
        raise ApiError(422, "invalid body", [{"field": "body.candles", "reason": str(exc)}]) from None
    except ValueError as exc:  # the candles (given or stored) do not pass validation
        raise ApiError(422, "invalid body", [{"field": "body.candles", "reason": str(exc)}]) from None
    observe_prediction(current_app, prediction.model_type, prediction.latency_ms / 1000.0)
    # Every answer says whether trading is halted (CRITICAL drift), as the request's snapshot read it.
    return PredictionOut.model_validate(
        prediction.to_dict() | halt_view(prediction.halt) | {"model_load_ms": prediction.model_load_ms}
    )


def _validated(c: Container, body: PredictionRequest) -> pd.DataFrame:
    """The request's candles checked by the data pipeline's rules (OHLC consistent, time increasing, ...)."""

    policy = c.policy_store.get()
    frame = pd.DataFrame([candle.model_dump() for candle in body.candles or []], columns=list(CANDLE_COLUMNS))
    try:
        clean, _ = validate_candles(frame, policy.data.timeframe, source="body.candles")
    except CandleValidationError as exc:
        raise ApiError(422, "invalid body", [{"field": "body.candles", "reason": str(exc)}]) from None
    need = warmup_rows(policy.features) + 1
    if len(clean) < need:
        reason = f"{len(clean)} candles are too few for the features; at least {need} are needed"
        raise ApiError(422, "invalid body", [{"field": "body.candles", "reason": reason}])
    return clean
