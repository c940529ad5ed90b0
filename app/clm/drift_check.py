"""The scheduled drift check (beat, every `check_interval_hours`).

For each ACTIVE model: feature drift of the current window (the policy's
`drift_detection.lookback_days` of stored candles, features computed as in training)
against the model's training rows (its reference statistics, built once from its dataset
and kept beside the model, hash-checked); prediction drift of its type (last 30 days of
predictions against the 30 before); performance drift against its own baseline.
Findings become `drift_events` rows and `drift.detected` events (app.drift_detector),
to which the CLM reacts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.core.clock import utcnow
from app.core.system import set_flag
from app.data_pipeline import CandleStore, engineer_features, timeframe_ms
from app.data_pipeline.timeframes import to_ms
from app.drift_detector.model_reference import reference_for_model
from app.drift_detector.service import check_feature_drift, check_performance_drift, check_prediction_drift
from app.model_registry import ModelRegistry
from app.model_registry.records import ACTIVE

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

IMPORT_HINT = "import them with `python -m workers.cli data import FILE --symbol SYMBOL --timeframe TF`"
WARMUP_CANDLES = 300  # enough history for the longest indicator window before the current window


def current_features(container: Container, now: datetime) -> pd.DataFrame:
    """Features of the policy's symbols over the lookback window ending at `now` (stored candles)."""

    policy = container.policy_store.get()
    now = policy.data.end or now  # a fixed data end (offline research): the window ends there
    step = timeframe_ms(policy.data.timeframe)
    start = now - timedelta(days=policy.clm_config.drift_detection.lookback_days)
    store = CandleStore(container)
    frames = []
    for symbol in policy.data.symbols:
        candles = store.read(
            policy.data.exchange, symbol, policy.data.timeframe, to_ms(start) - WARMUP_CANDLES * step, to_ms(now)
        )
        if len(candles) <= WARMUP_CANDLES:
            continue
        features = engineer_features(candles, policy.features)
        frames.append(features.loc[features["timestamp"] >= to_ms(start)])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def no_candles_reason(container: Container, now: datetime) -> str:
    policy = container.policy_store.get()
    end = policy.data.end or now
    start = end - timedelta(days=policy.clm_config.drift_detection.lookback_days)
    return (
        f"no stored candles for {', '.join(policy.data.symbols)} {policy.data.timeframe} in "
        f"[{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}); {IMPORT_HINT}"
    )


def run_drift_check(container: Container, now: datetime | None = None) -> dict[str, Any]:
    """Run every drift check for every ACTIVE model; returns a summary per model type."""

    now = now or utcnow()
    summary: dict[str, Any] = {}
    current: pd.DataFrame | None = None
    for model in ModelRegistry(container).list_models(status=ACTIVE, limit=100):
        entry: dict[str, Any] = {}
        try:
            if (model.manifest or {}).get("feature_columns"):
                current = current_features(container, now) if current is None else current
                if current.empty:
                    entry["feature"] = {"checked": False, "reason": no_candles_reason(container, now)}
                else:
                    reference = reference_for_model(container, model.model_id)
                    result = check_feature_drift(
                        container, reference, current, model_type=model.model_type, model_id=model.model_id
                    )
                    entry["feature"] = {
                        "severity": result.severity.value,
                        "checked": result.checked,
                        "reason": result.reason,
                        **result.summary,
                    }
            prediction = check_prediction_drift(container, model.model_type)
            entry["prediction"] = {
                "severity": prediction.severity.value,
                "checked": prediction.checked,
                "reason": prediction.reason,
            }
            performance = check_performance_drift(container, model.model_id)
            entry["performance"] = {
                "severity": performance.severity.value,
                "checked": performance.checked,
                "reason": performance.reason,
            }
        except Exception as exc:  # one model's failure does not hide the others' drift
            log.exception("drift check of %s failed", model.model_id)
            entry["error"] = f"{type(exc).__name__}: {exc}"
        summary[model.model_type] = entry
    record = {"at": now.isoformat(), "summary": _compact(summary)} | checked_and_not(summary)
    with container.session() as session:
        set_flag(session, "last_drift_check", True, record)
    return summary


def checked_and_not(summary: dict[str, Any]) -> dict[str, Any]:
    """What the check looked at (`"xgboost feature"`, ...) and what it could not, with the reason.

    A check that looked at nothing says so: a status of "no drift" would claim more than was seen."""
    checked: list[str] = []
    not_checked: dict[str, str] = {}
    for model_type, entry in summary.items():
        for kind, value in entry.items():
            if kind == "error":
                not_checked[model_type] = str(value)
            elif value.get("checked"):
                checked.append(f"{model_type} {kind}")
            else:
                not_checked[f"{model_type} {kind}"] = str(value.get("reason") or "not checked")
    reason = None if checked else ("no ACTIVE model to check" if not summary else "no check had enough data")
    return {"checked": checked, "not_checked": not_checked, "reason": reason}


def _compact(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        model_type: {
            kind: (value.get("severity") if isinstance(value, dict) else value) for kind, value in entry.items()
        }
        for model_type, entry in summary.items()
    }
