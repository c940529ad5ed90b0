"""A typed client of the Quantum Trader CLM API (httpx + pydantic)."""

from quantum_trader_client.client import CLMClient
from quantum_trader_client.errors import (
    ApiError,
    ClientError,
    Conflict,
    NotFound,
    TimedOut,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from quantum_trader_client.models import (
    Candle,
    ClmStatus,
    Job,
    JobAccepted,
    MetaDecision,
    MetaStrategyState,
    OutcomeAccepted,
    Prediction,
    RetrainingRequest,
    SizingDecision,
    SizingState,
    TradeOutcome,
)

__all__ = [
    "ApiError",
    "CLMClient",
    "Candle",
    "ClientError",
    "ClmStatus",
    "Conflict",
    "Job",
    "JobAccepted",
    "MetaDecision",
    "MetaStrategyState",
    "NotFound",
    "OutcomeAccepted",
    "Prediction",
    "RetrainingRequest",
    "SizingDecision",
    "SizingState",
    "TimedOut",
    "TradeOutcome",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
]
