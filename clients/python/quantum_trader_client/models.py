"""Request and response bodies, as the API's OpenAPI document describes them.

Field names, types and which fields are required agree with the API's pydantic models
(`app/api/schemas.py`); the repository's `tests/unit/test_client_types.py` proves it. The API
validates every value; these models only shape the calls.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MarketRegime = Literal["TRENDING", "RANGING", "CHOPPY", "VOLATILE"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")  # an API that grew a field still parses


# --------------------------------------------------------------------------- predictions


class Candle(_Request):
    timestamp: int = Field(description="open time, ms since epoch (UTC)")
    open: float
    high: float
    low: float
    close: float
    volume: float


class PredictionRequest(_Request):
    symbol: str
    model_type: str | None = None
    candles: list[Candle] | None = None


class TradingHaltView(_Response):
    trading_halted: bool = False
    halt_reason: str | None = None
    halted_since: datetime | None = None


class Prediction(TradingHaltView):
    prediction_id: int
    symbol: str
    model_id: str
    model_type: str
    predicted_return: float
    direction: int
    confidence: float
    timestamp: datetime
    horizon_end: datetime
    latency_ms: float  # the prediction's own time; model loading is apart
    model_load_ms: float = 0.0  # time the request spent loading its models (a cold start)
    shadow: dict[str, Any] | None
    shadow_test_id: int | None
    # An explicit abstention (direction 0): the model's confidence is under the policy's
    # min_confidence, or no model of the type passed the baseline gate. Do not trade on it.
    abstained: bool = False
    abstain_reason: str | None = None  # e.g. "confidence 0.47 below min_confidence 0.50"


# --------------------------------------------------------------------------- RL decisions


class MetaStrategyState(_Request):
    market_regime: MarketRegime
    volatility_level: Literal["LOW", "MEDIUM", "HIGH", "EXTREME"]
    liquidity_level: Literal["LOW", "MEDIUM", "HIGH"]
    recent_performance: Literal["GOOD", "NEUTRAL", "POOR"]


class MetaDecisionRequest(_Request):
    state: MetaStrategyState


class MetaDecision(TradingHaltView):
    decision_id: str
    strategy: Literal["trend_follow", "mean_reversion", "breakout", "range_bound", "defensive"]
    q_values: dict[str, float]
    epsilon: float
    explored: bool
    version: int
    state_key: str


class SizingState(_Request):
    market_regime: MarketRegime
    signal_confidence: float
    portfolio_exposure: float
    recent_winrate: float
    volatility: float


class SizingDecisionRequest(_Request):
    state: SizingState
    balance_usd: float
    open_positions: int = 0


class SizingDecision(TradingHaltView):
    decision_id: str
    allowed: bool
    size_usd: float
    leverage: int
    tp_strategy: str
    sl_strategy: str
    action: str
    proposed_size_usd: float
    proposed_leverage: int
    clamped: bool
    clamp_reasons: list[str]
    risk_mode: str
    q_value: float
    epsilon: float
    explored: bool
    version: int
    state_key: str


# --------------------------------------------------------------------------- outcomes


class TradeOutcome(_Request):
    """A closed trade; `trade_id` is its idempotency key (a retry is recognised)."""

    trade_id: str
    pnl_pct: float
    duration_hours: float
    symbol: str | None = None
    side: Literal["LONG", "SHORT"] | None = None
    realized_return: float | None = None
    max_drawdown_pct: float = 0.0
    hit_tp: bool = False
    hit_sl: bool = False
    winrate: float | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    prediction_id: int | None = None
    shadow_test_id: int | None = None
    prediction_ids: list[int] | None = None
    shadow_test_ids: list[int] | None = None
    entry_price: float | None = None
    exit_price: float | None = None
    size_usd: float | None = None
    leverage: int | None = None
    strategy: str | None = None
    exit_reason: str | None = None
    meta_state: dict[str, Any] | None = None
    meta_action: str | None = None
    meta_next_state: dict[str, Any] | None = None
    sizing_state: dict[str, Any] | None = None
    sizing_action: str | dict[str, Any] | None = None
    sizing_next_state: dict[str, Any] | None = None
    meta_decision_id: str | None = None
    sizing_decision_id: str | None = None


class OutcomeAccepted(_Response):
    event_id: int
    topic: str
    replayed: bool = False


# --------------------------------------------------------------------------- operations


class RetrainingRequest(_Request):
    kind: Literal["full", "partial"] = "full"
    model_types: list[str] = Field(default_factory=list)
    reason: str = "manual"
    data: dict[str, Any] | None = None
    force: bool = False  # start even while a job for these models runs or cools down (recorded on the job)


class JobAccepted(_Response):
    job_id: str
    status: str
    url: str


class Job(_Response):
    job_id: str
    job_type: str
    trigger_reason: str
    status: str
    stage: str | None
    progress_pct: float | None
    started_at: datetime
    completed_at: datetime | None
    duration_seconds: int | None
    model_types: list[str]
    models_trained: dict[str, dict[str, Any]]
    error_message: str | None
    forced_over: dict[str, str] | None
    training_window: dict[str, Any] | None  # a drift-started job: how its window was chosen

    @property
    def finished(self) -> bool:
        return self.status not in ("pending", "running")


class ResumeRequest(_Request):
    reason: str = "operator"


class ClmStatus(_Response):
    trading_halted: dict[str, Any]
    manager: dict[str, Any]
    retraining: dict[str, Any]
    models: dict[str, Any]
    shadow_tests: list[dict[str, Any]]
    rl_agents: list[dict[str, Any]]
    regimes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    drift: dict[str, Any]
    recent_jobs: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    schedule: dict[str, Any]
    policy_version: int
