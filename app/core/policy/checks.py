"""Semantic checks of a whole policy, beyond its field types: values the rest of the system can use.

The schema's fields say "a positive number"; these checks say "a number of hours a scheduler
can wait", "a symbol the exchange can name", "a model type that exists". A stored value
outside them broke readers far from the edit (an interval of 1e308 days overflowed
`timedelta` in beat and `/api/clm/status`; `timeframe: "banana"` failed every prediction).

The vocabulary that lives above this package (the data layer's timeframes, the table of
model types) is handed in by the composition root as a `PolicyVocabulary`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# The exchange's unified symbol, BASE/QUOTE (ccxt); candles.symbol is VARCHAR(20).
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{1,12}/[A-Z0-9]{1,12}$")
SYMBOL_MAX_LENGTH = 20
MAX_SYMBOLS = 200
EXCHANGE_PATTERN = re.compile(r"^[a-z0-9_]{1,32}$")
RISK_MODE_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
MAX_TIMEFRAME_MS = 7 * 86_400_000  # a week: the longest candle an exchange serves
MAX_LIST_ITEMS = 50
MAX_PERIOD = 10_000  # candles in an indicator window or a label horizon

MINUTE_IN_HOURS = 1 / 60
HOUR_IN_DAYS = 1 / 24

# dotted path -> (lowest, highest), both inclusive. Intervals are at least a minute (a beat
# entry), durations at most ten years; counts and sizes at most what one host can train.
BOUNDS: dict[str, tuple[float, float]] = {
    "clm_config.schedule_interval_days": (HOUR_IN_DAYS, 365),
    "clm_config.retraining_cooldown_hours": (0, 24 * 365),
    "clm_config.health_check_interval_hours": (MINUTE_IN_HOURS, 24 * 7),
    "clm_config.shadow_evaluation_interval_hours": (MINUTE_IN_HOURS, 24 * 7),
    "clm_config.retired_versions_kept": (0, 1_000),
    "clm_config.shadow_patience_days": (0, 3_650),
    "clm_config.max_task_deliveries": (1, 100),
    "clm_config.stale_job_minutes": (0.05, 7 * 24 * 60),
    "clm_config.auto_promote_threshold.min_samples": (10, 10_000_000),
    "clm_config.auto_promote_threshold.max_samples": (10, 100_000_000),
    "clm_config.auto_promote_threshold.min_improvement_pct": (0, 1_000),
    "clm_config.auto_promote_threshold.max_drawdown_pct": (0, 100),
    "clm_config.drift_detection.check_interval_hours": (MINUTE_IN_HOURS, 24 * 30),
    "clm_config.drift_detection.psi_threshold": (0, 100),
    "clm_config.drift_detection.lookback_days": (HOUR_IN_DAYS, 3_650),
    "clm_config.drift_detection.prediction_window_days": (HOUR_IN_DAYS, 3_650),
    "clm_config.drift_detection.min_rows": (10, 10_000_000),
    "clm_config.drift_detection.max_sample_rows": (10, 10_000_000),
    "clm_config.drift_window.min_window_days": (HOUR_IN_DAYS, 3_650),
    "clm_config.drift_window.min_window_candles": (1, 10_000_000),
    "clm_config.drift_window.block_hours": (MINUTE_IN_HOURS, 24 * 30),
    "clm_config.drift_window.penalty_scale": (0.01, 1_000),
    "clm_config.drift_window.max_features": (1, 20),
    "clm_config.rl_maintenance.snapshot_interval_trades": (1, 10_000_000),
    "clm_config.rl_maintenance.prune_old_states_threshold": (1, 100_000_000),
    "clm_config.rl_maintenance.maintenance_interval_hours": (MINUTE_IN_HOURS, 24 * 365),
    "clm_config.retention.interval_hours": (MINUTE_IN_HOURS, 24 * 30),
    "clm_config.retention.events_days": (HOUR_IN_DAYS, 3_650),
    "clm_config.retention.prediction_logs_days": (HOUR_IN_DAYS, 7_300),
    "clm_config.retention.shadow_results_days": (HOUR_IN_DAYS, 3_650),
    "clm_config.retention.rl_decisions_days": (HOUR_IN_DAYS, 3_650),
    # an open trade names its decisions when it closes: an unapplied decision is kept a day at least
    "clm_config.retention.rl_unapplied_decisions_days": (1, 3_650),
    "clm_config.retention.max_seconds": (1e-9, 86_400),  # a tiny budget only deletes less per run
    "clm_config.trading_halt.max_hours": (MINUTE_IN_HOURS, 24 * 3_650),  # None (never by age) is not checked
    "training.seed": (0, 2**32 - 1),
    "training.cv_folds": (2, 100),
    "training.min_confidence": (0, 1),
    "training.xgboost.n_estimators": (1, 100_000),
    "training.xgboost.early_stopping_rounds": (1, 100_000),
    "training.xgboost.min_child_weight": (0, 1_000_000),
    "training.xgboost.max_bin": (2, 65_536),
    "training.lightgbm.n_estimators": (1, 100_000),
    "training.lightgbm.num_leaves": (2, 131_072),
    "training.lightgbm.min_child_samples": (1, 1_000_000),
    "training.lightgbm.early_stopping_rounds": (1, 100_000),
    "training.lightgbm.max_bin": (2, 65_536),
    "training.nhits.input_size": (2, 100_000),
    "training.nhits.max_steps": (1, 1_000_000),
    "training.nhits.learning_rate": (1e-8, 1),
    "training.nhits.batch_size": (1, 65_536),
    "training.nhits.early_stop_patience_steps": (-1, 100_000),
    "training.nhits.val_check_steps": (1, 1_000_000),
    "training.patchtst.input_size": (2, 100_000),
    "training.patchtst.max_steps": (1, 1_000_000),
    "training.patchtst.learning_rate": (1e-8, 1),
    "training.patchtst.batch_size": (1, 65_536),
    "training.patchtst.patch_len": (1, 10_000),
    "training.patchtst.stride": (1, 10_000),
    "training.patchtst.early_stop_patience_steps": (-1, 100_000),
    "training.patchtst.val_check_steps": (1, 1_000_000),
    "data.lookback_days": (1, 3_650),
    "data.stalled_feed_intervals": (1, 10_000),
    "features.atr_period": (2, MAX_PERIOD),
    "features.adx_period": (2, MAX_PERIOD),
    "features.bb_period": (2, MAX_PERIOD),
    "features.bb_std": (0, 100),
    "labels.horizon": (1, MAX_PERIOD),
    "labels.fee_pct": (0, 10),
    "labels.regime_window": (5, MAX_PERIOD),
    "risk.base_position_usd": (0, 1e9),
    "supervisor.max_latency_ms": (0, 600_000),
    "supervisor.min_long_short_ratio": (0, 1_000),
    "supervisor.max_long_short_ratio": (0, 1_000),
    "supervisor.min_outcomes": (1, 10_000_000),
}
PERIOD_LISTS = (
    "features.rsi_periods",
    "features.ema_periods",
    "features.sma_periods",
    "features.return_horizons",
    "features.volatility_windows",
    "features.volume_windows",
)


@dataclass(frozen=True)
class PolicyVocabulary:
    """What the layers above know: the model types that exist and the timeframes the data layer reads."""

    model_types: frozenset[str]
    timeframe_ms: Callable[[str], int]  # raises ValueError for a timeframe it does not know


def policy_problems(document: dict[str, Any], vocabulary: PolicyVocabulary | None = None) -> list[dict[str, str]]:
    """Every value of a policy document (already valid against the schema) the system cannot use,
    as {field, reason}; empty when it is usable."""
    problems = [*_bounds(document), *_non_finite(document, ""), *_data(document["data"]), *_features(document)]
    problems.extend(_training(document["training"]["model_types"], vocabulary))
    if vocabulary is not None:
        problems.extend(_timeframe(document["data"]["timeframe"], vocabulary))
    for name in document["risk"]["modes"]:
        if not RISK_MODE_PATTERN.match(name):
            problems.append({"field": f"risk.modes.{name}", "reason": "a mode name is 1-32 letters, digits, _ or -"})
    return list({(p["field"], p["reason"]): p for p in problems}.values())


def _lookup(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for key in dotted.split("."):
        value = value[key]
    return value


def _bounds(document: dict[str, Any]) -> Iterator[dict[str, str]]:
    for field, (lowest, highest) in BOUNDS.items():
        value = _lookup(document, field)
        if value is None:  # an optional setting left unset
            continue
        if not lowest <= value <= highest:  # NaN fails too
            yield {"field": field, "reason": f"must be between {lowest:g} and {highest:g}, got {value!r}"}


def _non_finite(value: Any, where: str) -> Iterator[dict[str, str]]:
    if isinstance(value, float) and not math.isfinite(value):
        yield {"field": where, "reason": f"must be a finite number, got {value!r}"}
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, f"{where}.{key}" if where else str(key))


def _data(data: dict[str, Any]) -> Iterator[dict[str, str]]:
    symbols: list[str] = data["symbols"]
    if not EXCHANGE_PATTERN.match(data["exchange"]):
        yield {"field": "data.exchange", "reason": "an exchange id is 1-32 lower-case letters, digits or _"}
    if len(symbols) > MAX_SYMBOLS:
        yield {"field": "data.symbols", "reason": f"at most {MAX_SYMBOLS} symbols"}
    for index, symbol in enumerate(symbols):
        if len(symbol) > SYMBOL_MAX_LENGTH or not SYMBOL_PATTERN.match(symbol):
            yield {
                "field": f"data.symbols.{index}",
                "reason": f"{symbol[:40]!r} is not an exchange symbol BASE/QUOTE "
                f"(upper-case letters and digits, at most {SYMBOL_MAX_LENGTH} characters, e.g. 'BTC/USDT')",
            }
    if len(set(symbols)) != len(symbols):
        yield {"field": "data.symbols", "reason": "a symbol is listed twice"}


def _features(document: dict[str, Any]) -> Iterator[dict[str, str]]:
    for field in PERIOD_LISTS:
        periods = _lookup(document, field)
        if not 1 <= len(periods) <= MAX_LIST_ITEMS:
            yield {"field": field, "reason": f"between 1 and {MAX_LIST_ITEMS} values"}
        for index, period in enumerate(periods):
            if not 1 <= period <= MAX_PERIOD:
                yield {"field": f"{field}.{index}", "reason": f"must be between 1 and {MAX_PERIOD}, got {period!r}"}


def _training(model_types: list[str], vocabulary: PolicyVocabulary | None) -> Iterator[dict[str, str]]:
    if not model_types:
        yield {"field": "training.model_types", "reason": "at least one model type is needed"}
    if len(set(model_types)) != len(model_types):
        yield {"field": "training.model_types", "reason": "a model type is listed twice"}
    if vocabulary is None:
        return
    for index, model_type in enumerate(model_types):
        if model_type not in vocabulary.model_types:
            yield {
                "field": f"training.model_types.{index}",
                "reason": f"unknown model type {model_type[:50]!r}; known: {sorted(vocabulary.model_types)}",
            }


def _timeframe(timeframe: str, vocabulary: PolicyVocabulary) -> Iterator[dict[str, str]]:
    try:
        length = vocabulary.timeframe_ms(timeframe)
    except ValueError as exc:
        yield {"field": "data.timeframe", "reason": str(exc)}
        return
    if length > MAX_TIMEFRAME_MS:
        yield {"field": "data.timeframe", "reason": f"{timeframe!r} is longer than a week"}
