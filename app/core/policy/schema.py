"""The policy's schema: one validated document holding every tunable (pure: no storage here).

Defaults are the specification's numbers (`clm_config`, thresholds, RL settings).
`validate_policy` checks a whole document; an invalid one raises `PolicyValidationError`
naming the field and the reason. Storage is `app.core.policy.store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from app.core.policy.checks import PolicyVocabulary, policy_problems
from app.forecasters import MODEL_TYPES, Forecaster


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- clm_config


class AutoPromoteThreshold(_Strict):
    min_samples: int = Field(1000, ge=10)
    min_improvement_pct: float = Field(5.0, ge=0)
    max_drawdown_pct: float = Field(3.0, gt=0)
    significance_level: float = Field(0.05, gt=0, lt=0.5)  # paired test on per-sample PnL, over all looks
    # The last look of a shadow test (looks at min_samples x 2^k): no promotion by then is REJECTED.
    max_samples: int = Field(8000, ge=10)
    auto_promote: bool = True
    # After a regime change (app/shadow_tester/regime.py): a challenger trained from a drift's change
    # point that all of the active model's data precede is promoted once shown to trail the active
    # by less than this margin, per pair, in percent of the price (0.2: one round trip of fees at the
    # default fee_pct); a challenger shown worse is still rejected. 0: always ask for superiority.
    non_inferiority_margin_pct: float = Field(0.2, ge=0, le=5)

    @model_validator(mode="after")
    def _looks(self) -> AutoPromoteThreshold:
        if self.max_samples < self.min_samples:
            raise ValueError(f"max_samples ({self.max_samples}) must be at least min_samples ({self.min_samples})")
        return self


class DriftDetection(_Strict):
    enabled: bool = True
    check_interval_hours: float = Field(6, gt=0)
    ks_test_threshold: float = Field(0.05, gt=0, lt=1)
    psi_threshold: float = Field(0.2, gt=0)
    lookback_days: float = Field(7, gt=0)  # "current" window of a feature drift check
    prediction_window_days: float = Field(30, gt=0)
    fdr_method: Literal["benjamini-hochberg"] = "benjamini-hochberg"
    min_rows: int = Field(200, ge=10)
    # Prediction and performance drift read at most this many logs per model and window: an
    # evenly spaced sample when there are more (app/drift_detector/samples.py).
    max_sample_rows: int = Field(20_000, ge=10)

    @model_validator(mode="after")
    def _sample_holds_enough(self) -> DriftDetection:
        if self.max_sample_rows < self.min_rows:
            raise ValueError(f"max_sample_rows ({self.max_sample_rows}) must be at least min_rows ({self.min_rows})")
        return self


class RLMaintenance(_Strict):
    snapshot_interval_trades: int = Field(500, ge=1)
    reset_on_regime_change: bool = True
    prune_old_states_threshold: int = Field(10000, ge=1)
    maintenance_interval_hours: float = Field(24, gt=0)


class Retention(_Strict):
    """How long the high-volume telemetry is kept (`app/operations/telemetry_retention.py`). The registry and its
    history, jobs, drift events, health logs, policy versions and RL state (Q-tables, versions) are kept for ever."""

    enabled: bool = True
    interval_hours: float = Field(1, gt=0)
    events_days: float = Field(30, gt=0)  # delivered events; pending and dead ones are kept
    prediction_logs_days: float = Field(90, gt=0)  # at least 2 x drift_detection.prediction_window_days
    shadow_results_days: float = Field(90, gt=0)  # pairs of finished shadow tests; a running test keeps all
    rl_decisions_days: float = Field(90, gt=0)  # RL decisions applied by an outcome, or that allowed no trade
    rl_unapplied_decisions_days: float = Field(30, gt=0)  # decisions an outcome may still name (at least 1 day)
    batch_rows: int = Field(10_000, ge=100, le=30_000)  # rows per short delete transaction
    max_seconds: float = Field(300, gt=0)  # per run; what is left waits for the next run


class BaselineGate(_Strict):
    """A trained model goes live only when, on its pooled walk-forward test parts after fees, its
    Sharpe beats zero return and buy-and-hold by `min_sharpe_margin` with the block-bootstrap
    interval of each difference above zero (`app/model_training/scoring.py`). A model scored as a
    market-neutral long/short book (`training.target: market_relative`) is compared with its own
    kind instead: zero return and persistence traded market-neutral (`NEUTRAL_GATE_BASELINES`);
    the reason names the baselines used. Off is for research only: every registration then
    says, loudly, that nothing was checked."""

    enabled: bool = True
    min_sharpe_margin: float = Field(0.1, ge=0)  # annualised Sharpe
    bootstrap_replicates: int = Field(500, ge=50, le=10_000)


class DriftWindow(_Strict):
    """The training window of a retraining that drift starts (`app/retraining/window.py`):
    "change_point" starts it at the change point a binary segmentation finds in the drifted
    features (BIC penalty x `penalty_scale`, over blocks of `block_hours`); "fixed" keeps the
    policy's `data.lookback_days`. A change point nearer the end than `min_window_days` (and
    `min_window_candles` candles) leaves too few rows (the trainings' splits and folds need
    them: 3 days of 15m candles left some folds empty); `short_window` says what then happens:
    "extend" moves the window's start back to leave that much (old-market rows included),
    "wait" starts no retraining yet, so that a later drift check retrains on the new market
    alone once it has that many candles.
    Recency weights are not offered: the neural forecasters take no sample weights."""

    method: Literal["fixed", "change_point"] = "change_point"
    short_window: Literal["extend", "wait"] = "extend"
    min_window_days: float = Field(3, gt=0)
    min_window_candles: int = Field(600, ge=1)
    block_hours: float = Field(4, gt=0)
    penalty_scale: float = Field(1.0, gt=0)
    max_features: int = Field(3, ge=1)


class TradingHaltPolicy(_Strict):
    """When a CRITICAL drift's trading halt ends by itself (`app/clm/halt.py`); an operator can
    always resume earlier (`POST /api/clm/resume-trading`). `resume_on_promotion`: a model promoted
    to ACTIVE whose retraining job started at or after the halt began lifts it (a model trained
    before the halt does not). `max_hours`: the hourly health check lifts a halt this old; None:
    never by age. Both off (`false`, `null`): only an operator resumes."""

    resume_on_promotion: bool = True
    max_hours: float | None = Field(None, gt=0)


class ClmConfig(_Strict):
    enabled: bool = True
    schedule_interval_days: float = Field(7, gt=0)
    retraining_cooldown_hours: float = Field(6, ge=0)
    # An automatic retraining (scheduled, drift, performance) leaves alone a model type whose SHADOW
    # model was registered less than this long ago, so that its shadow test can decide: a new model
    # would retire it, and with tests that need days of pairs none reached its second look. 0: off.
    # An operator's retraining is never held back.
    shadow_patience_days: float = Field(7, ge=0)
    health_check_interval_hours: float = Field(1, gt=0)
    shadow_evaluation_interval_hours: float = Field(1, gt=0)
    retired_versions_kept: int = Field(5, ge=0)  # per type; older retired artifacts are deleted
    max_task_deliveries: int = Field(3, ge=1)  # a training task that kills its worker is given up after this
    stale_job_minutes: float = Field(120, gt=0)  # a running job without a heartbeat this long is closed
    # Rollback targets a version that was ACTIVE before; with this, also the type's SHADOW model.
    rollback_to_shadow: bool = False
    # The ACTIVE model's artifact failing its hash check: predictions of the type answer 503 naming
    # it; with this, they are served by the newest earlier ACTIVE version whose artifact is intact.
    integrity_fallback: bool = False
    # a training task that has not beaten for this long has lost its worker: redelivered, or closed as lost
    task_heartbeat_minutes: float = Field(3, gt=0)
    auto_promote_threshold: AutoPromoteThreshold = AutoPromoteThreshold()
    baseline_gate: BaselineGate = BaselineGate()
    drift_detection: DriftDetection = DriftDetection()
    drift_window: DriftWindow = DriftWindow()
    rl_maintenance: RLMaintenance = RLMaintenance()
    retention: Retention = Retention()
    trading_halt: TradingHaltPolicy = TradingHaltPolicy()

    @model_validator(mode="after")
    def _prediction_logs_outlive_the_drift_window(self) -> ClmConfig:
        needed = 2 * self.drift_detection.prediction_window_days  # prediction drift: recent vs the window before
        if self.retention.prediction_logs_days < needed:
            raise ValueError(
                f"retention.prediction_logs_days ({self.retention.prediction_logs_days}) must be at least "
                f"2 x drift_detection.prediction_window_days ({needed}): the prediction drift check reads that far back"
            )
        return self


# --------------------------------------------------------------------------- training


class TrainingSettings(_Strict):
    """The training fields every model type shares; `TrainingConfig` adds a section per type."""

    model_types: list[str] = ["xgboost", "lightgbm", "nhits", "patchtst"]
    seed: int = 42
    cv_folds: int = Field(5, ge=2)
    # Each walk-forward fold its own task (a job shortens with every added worker); off, a
    # model's folds run inside its training task, one after the other.
    fold_tasks: bool = True
    train_frac: float = Field(0.8, gt=0, lt=1)
    val_frac: float = Field(0.1, gt=0, lt=1)
    # What the tree models (types with FITS_TARGETS) learn (app/forecasters/base.py, measured in
    # bench/quality.py): "return" the label's log return; "net_of_fee_class" the labels' up/down/no-trade
    # class; "market_relative" the return minus the cross-section's mean at that time, traded
    # (and scored) as a long/short book against the equal-weighted market.
    target: Literal["return", "net_of_fee_class", "market_relative"] = "return"
    demean_target: bool = False  # remove the training part's mean from the target (no drift bet)
    # Abstention (meta-labelling): a row whose calibrated confidence is below this is not traded
    # (direction 0), in scoring and in served predictions; 0 trades every forecast outside the dead zone.
    min_confidence: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _fractions(self) -> TrainingSettings:
        if self.train_frac + self.val_frac >= 1:
            raise ValueError("train_frac + val_frac must leave room for a test part (< 1)")
        return self


def training_config(model_types: Mapping[str, type[Forecaster]]) -> type[TrainingSettings]:
    """The training section: the shared fields, then `<type>: <its Params>` for each model type."""
    sections: dict[str, Any] = {name: (cls.Params, cls.Params()) for name, cls in model_types.items()}
    return create_model("TrainingConfig", __base__=TrainingSettings, __module__=__name__, **sections)


if TYPE_CHECKING:

    class TrainingConfig(TrainingSettings):
        def __getattr__(self, model_type: str) -> Any: ...  # one section per registered model type

else:
    TrainingConfig = training_config(MODEL_TYPES)


# --------------------------------------------------------------------------- data, features, labels


class DataConfig(_Strict):
    exchange: str = "binance"
    symbols: list[str] = Field(default_factory=lambda: ["BTC/USDT", "ETH/USDT"], min_length=1)
    timeframe: str = "5m"
    lookback_days: float = Field(180, gt=0)
    stalled_feed_intervals: int = Field(3, ge=1)
    # "exchange": the candle-refresh job keeps the store current from the exchange; "stored": only
    # candles already imported are used (research, air-gapped) and the refresh job does nothing.
    source_mode: Literal["exchange", "stored"] = "exchange"
    # A fixed end of the data (naive UTC) for retraining and drift windows instead of now: imported files end somewhere.
    end: datetime | None = None


class FeatureConfig(_Strict):
    rsi_periods: list[int] = [7, 14, 21]
    ema_periods: list[int] = [9, 21, 50]
    sma_periods: list[int] = [10, 20, 50]
    return_horizons: list[int] = [1, 3, 6, 12, 24]
    volatility_windows: list[int] = [12, 48]
    volume_windows: list[int] = [12, 48]
    atr_period: int = Field(14, ge=2)
    adx_period: int = Field(14, ge=2)
    bb_period: int = Field(20, ge=2)
    bb_std: float = Field(2.0, gt=0)


class LabelConfig(_Strict):
    horizon: int = Field(12, ge=1)
    fee_pct: float = Field(0.1, ge=0)  # per side, percent; the dead zone is the round trip
    regime_window: int = Field(48, ge=5)


# --------------------------------------------------------------------------- RL, risk, supervisor


class RLConfig(_Strict):
    learning_rate: float = Field(0.1, gt=0, le=1)
    discount: float = Field(0.95, ge=0, le=1)
    epsilon_start: float = Field(0.5, ge=0, le=1)
    epsilon_min: float = Field(0.05, ge=0, le=1)
    epsilon_decay: float = Field(0.995, gt=0, le=1)
    reset_epsilon: float = Field(0.5, ge=0, le=1)


class RiskMode(_Strict):
    max_risk_pct_per_trade: float = Field(gt=0, le=1)  # fraction of balance per trade
    max_leverage: int = Field(ge=1, le=125)
    max_positions: int = Field(ge=1)


def _default_modes() -> dict[str, RiskMode]:
    return {
        "conservative": RiskMode(max_risk_pct_per_trade=0.01, max_leverage=3, max_positions=3),
        "normal": RiskMode(max_risk_pct_per_trade=0.02, max_leverage=5, max_positions=5),
        "aggressive": RiskMode(max_risk_pct_per_trade=0.05, max_leverage=10, max_positions=10),
    }


class RiskConfig(_Strict):
    active_mode: str = "normal"
    modes: dict[str, RiskMode] = Field(default_factory=_default_modes)
    base_position_usd: float = Field(1000.0, gt=0)

    @model_validator(mode="after")
    def _mode_exists(self) -> RiskConfig:
        if self.active_mode not in self.modes:
            raise ValueError(f"active_mode {self.active_mode!r} is not one of {sorted(self.modes)}")
        return self


class SupervisorConfig(_Strict):
    min_winrate: float = Field(0.45, ge=0, le=1)
    max_calibration_error: float = Field(0.15, ge=0, le=1)
    max_latency_ms: float = Field(500, gt=0)
    min_long_short_ratio: float = Field(0.33, gt=0)
    max_long_short_ratio: float = Field(3.0, gt=0)
    min_outcomes: int = Field(30, ge=1)


class Policy(_Strict):
    clm_config: ClmConfig = ClmConfig()
    training: TrainingConfig = TrainingConfig()
    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    labels: LabelConfig = LabelConfig()
    rl: RLConfig = RLConfig()
    risk: RiskConfig = RiskConfig()
    supervisor: SupervisorConfig = SupervisorConfig()


class PolicyValidationError(ValueError):
    """An invalid policy edit: `errors` lists each field (dotted path) and the reason."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def validate_policy(document: dict[str, Any], vocabulary: PolicyVocabulary | None = None) -> Policy:
    """The policy of `document`, checked whole: its schema, then every value the system must be able to
    use (`app.core.policy.checks`; model types and timeframes too when a `vocabulary` is given)."""
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(document)", "reason": err["msg"]}
            for err in exc.errors()
        ]
        raise PolicyValidationError(errors) from None
    problems = policy_problems(policy.model_dump(mode="python"), vocabulary)
    if problems:
        raise PolicyValidationError(problems)
    return policy
