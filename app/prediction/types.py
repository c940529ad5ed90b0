"""What the live path answers, and the errors it raises."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.core.system import TradingHalt

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class InsufficientHistoryError(ValueError):
    """Too few candles to compute the features: the message says how many are needed."""


class NoActiveModelError(LookupError):
    """No ACTIVE model to answer with."""


class ModelIntegrityError(RuntimeError):
    """The model to answer with fails its artifact check (ArtifactIntegrityError, file gone)."""

    def __init__(self, model_id: str, message: str) -> None:
        super().__init__(message)
        self.model_id = model_id


@dataclass(frozen=True)
class Prediction:
    symbol: str
    model_id: str
    model_type: str
    predicted_return: float
    direction: int
    confidence: float
    timestamp: datetime  # close time of the last candle the prediction is based on
    horizon_end: datetime
    latency_ms: float
    prediction_id: int
    shadow: dict[str, Any] | None = None  # the SHADOW model's prediction (model_id, ...)
    shadow_test_id: int | None = None
    # An explicit abstention (direction 0), and why: the model's calibrated confidence is under the
    # policy's `training.min_confidence` (its confidence is still reported), or no model of the type
    # passed the baseline gate (no model answered: model_id "", confidence 0).
    abstained: bool = False
    abstain_reason: str | None = None
    # The trading halt when the request was served (from the request's own snapshot; not in the signal).
    halt: TradingHalt | None = field(default=None, compare=False)
    # Time this request spent loading its models (a cold start), not counted in latency_ms; not in the signal.
    model_load_ms: float = field(default=0.0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("halt", "model_load_ms")}
        out["timestamp"] = self.timestamp.isoformat()
        out["horizon_end"] = self.horizon_end.isoformat()
        return out
