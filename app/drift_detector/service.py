"""Drift checks against storage: feature, prediction and performance drift.

Every finding is a `drift_events` row and a `drift.detected` event written in one
transaction (the event exists exactly when the row does). Thresholds come from
`Policy.clm_config.drift_detection` (and `Policy.supervisor.min_outcomes` for performance).
A check with too little data records nothing and says why in its result.

Event payload: {drift_type, feature, p_value, severity, model_type, model_id, check_id,
drift_event_id, threshold, ...statistics of the finding}. For feature and prediction drift
`p_value` is the effective-size (autocorrelation-aware) KS p-value that decided
significance; `p_value_iid` (scipy's exact one, or its asymptotic one where the exact one provably
lies below `p_value`: `app.drift_detector.stats`) and the BH-adjusted `p_adjusted` travel beside it.
A feature check with several drifted features gives one event per feature, all carrying
the check's overall severity and the same `check_id`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from app.core.clock import utcnow
from app.core.db.models import DriftEvent, ModelRegistry
from app.core.topics import DriftDetected
from app.data_pipeline.timeframes import timeframe_ms
from app.drift_detector.check import FeatureDriftReport, evaluate_feature_drift
from app.drift_detector.performance import PerformanceWindow, evaluate_performance
from app.drift_detector.reference import ReferenceStats, reference_from_matrix
from app.drift_detector.samples import prediction_sample
from app.drift_detector.stats import Severity
from app.shadow_tester.stats import paired_block_us

if TYPE_CHECKING:
    from app.core.container import Container


@dataclass
class DriftFinding:
    feature: str | None
    p_value: float | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DriftResult:
    drift_type: str  # feature, prediction, performance
    severity: Severity
    model_type: str | None = None
    model_id: str | None = None
    checked: bool = True
    reason: str = ""
    threshold: float | None = None
    findings: list[DriftFinding] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    check_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    drift_event_ids: list[int] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return self.severity is not Severity.NONE


def _record(container: Container, result: DriftResult) -> DriftResult:
    """Write each finding as a row and an event, all in one transaction.

    One check, one reaction: every event names the check's first one
    (`check_lead_event_id`), on which the CLM and the alerts act; the lead event also lists
    the check's other events (`check_event_ids`), which the CLM marks in one statement."""
    if not result.drifted:
        return result
    now = utcnow()
    with container.session() as session:
        rows = [
            DriftEvent(
                detected_at=now,
                drift_type=result.drift_type,
                model_type=result.model_type,
                feature_name=finding.feature,
                p_value=finding.p_value,
                threshold=result.threshold,
                severity=result.severity.value,
                metadata_={"check_id": result.check_id, "model_id": result.model_id, **finding.details},
                created_at=now,
            )
            for finding in result.findings
        ]
        session.add_all(rows)
        session.flush()  # the ids go into the events
        result.drift_event_ids.extend(row.id for row in rows)
        lead = result.drift_event_ids[0]
        for finding, row in zip(result.findings, rows, strict=True):
            payload = {
                "check_lead_event_id": lead,
                "drift_type": result.drift_type,
                "feature": finding.feature,
                "p_value": finding.p_value,
                "severity": result.severity.value,
                "model_type": result.model_type,
                "model_id": result.model_id,
                "check_id": result.check_id,
                "drift_event_id": row.id,
                "threshold": result.threshold,
                **finding.details,
            }
            if row.id == lead:
                payload["check_event_ids"] = result.drift_event_ids
            container.bus.publish(session, DriftDetected(**payload))
    return result


def follows_lead(payload: DriftDetected) -> bool:
    """A `drift.detected` payload that is not its check's lead event: the lead's reaction covers it."""
    lead, own = payload.check_lead_event_id, payload.drift_event_id
    return lead is not None and own is not None and own != lead


def _report_findings(report: FeatureDriftReport) -> list[DriftFinding]:
    return [
        DriftFinding(
            feature=report.feature_names[i],
            p_value=float(report.p_value_effective[i]),
            details={
                "p_value_iid": float(report.p_value[i]),
                "ks_statistic": float(report.ks_statistic[i]),
                "p_adjusted": float(report.p_adjusted[i]),
                "psi": float(report.psi[i]),
                "material": bool(report.material[i]),
                "n_reference": int(report.n_reference[i]),
                "n_current": int(report.n_current[i]),
                "fdr": "benjamini-hochberg",
            },
        )
        for i in np.flatnonzero(report.significant)
    ]


def check_feature_drift(
    container: Container,
    reference: ReferenceStats,
    current_df: pd.DataFrame,
    *,
    model_type: str | None = None,
    model_id: str | None = None,
    drift_type: str = "feature",
) -> DriftResult:
    """Compare `current_df`'s feature columns with the reference; record what drifted."""
    config = container.policy_store.get().clm_config.drift_detection
    model_type = model_type or reference.metadata.get("model_type")
    model_id = model_id or reference.metadata.get("model_id")
    base = DriftResult(drift_type, Severity.NONE, model_type, model_id, threshold=config.ks_test_threshold)
    if not config.enabled:
        base.checked, base.reason = False, "drift detection is disabled by the policy"
        return base
    missing = [name for name in reference.feature_names if name not in current_df.columns]
    if missing:
        raise ValueError(f"check_feature_drift: current frame lacks the reference's features {missing}")
    if len(current_df) < config.min_rows:
        base.checked, base.reason = False, f"{len(current_df)} current rows, the policy wants {config.min_rows}"
        return base
    try:
        current = current_df[reference.feature_names].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"check_feature_drift: feature columns must be numeric ({exc})") from None
    report = evaluate_feature_drift(reference, current, config.ks_test_threshold, config.psi_threshold)
    base.severity, base.summary = report.severity, report.summary()
    base.findings = _report_findings(report)
    return _record(container, base)


def _prediction_frames(
    container: Container, model_type: str, windows: list[tuple[Any, Any]], max_rows: int
) -> list[pd.DataFrame]:
    """The type's predictions in each [start, end): every one, or an evenly spaced sample (`samples`)."""
    with container.session_factory() as session:
        model_ids = list(session.scalars(select(ModelRegistry.model_id).where(ModelRegistry.model_type == model_type)))
        columns = ("predicted_return", "confidence")
        return [
            prediction_sample(session, model_ids, start, end, columns, max_rows).astype(float) for start, end in windows
        ]


def check_prediction_drift(container: Container, model_type: str, lookback_days: float | None = None) -> DriftResult:
    """Predictions and confidences of `model_type`: the last `lookback_days` against the ones before."""
    config = container.policy_store.get().clm_config.drift_detection
    days = lookback_days if lookback_days is not None else config.prediction_window_days
    now = utcnow()
    recent, previous = _prediction_frames(
        container,
        model_type,
        [(now - timedelta(days=days), now), (now - timedelta(days=2 * days), now - timedelta(days=days))],
        config.max_sample_rows,
    )
    columns = ["predicted_return", "confidence"]
    if min(len(recent), len(previous)) < config.min_rows:
        result = DriftResult("prediction", Severity.NONE, model_type, threshold=config.ks_test_threshold)
        result.checked = False
        result.reason = (
            f"{len(previous)} previous and {len(recent)} recent predictions, the policy wants {config.min_rows}"
        )
        return result
    usable = [c for c in columns if previous[c].notna().any() and recent[c].notna().any()]
    reference = reference_from_matrix(
        np.ascontiguousarray(previous[usable].to_numpy(dtype=np.float64).T),
        usable,
        {"model_type": model_type, "window_days": days},
    )
    return check_feature_drift(container, reference, recent, model_type=model_type, drift_type="prediction")


def check_performance_drift(container: Container, model_id: str, lookback_days: float = 7) -> DriftResult:
    """Rolling winrate and average PnL of `model_id`'s closed predictions against its own baseline."""
    policy = container.policy_store.get()
    config = policy.clm_config.drift_detection
    since = utcnow() - timedelta(days=lookback_days)
    with container.session_factory() as session:
        model = session.get(ModelRegistry, model_id)
        if model is None:
            raise ValueError(f"check_performance_drift: no model {model_id!r} in the registry")
        closed = prediction_sample(
            session,
            [model_id],
            since,
            utcnow(),
            ("timestamp", "direction", "realized_return"),
            config.max_sample_rows,
            True,
        )
        model_type, metrics = model.model_type, dict(model.metrics or {})
    direction = closed["direction"].fillna(0).to_numpy(dtype=float)
    realized = closed["realized_return"].to_numpy(dtype=float)
    # Block-robust tests (the shadow test's blocks): overlapping labels and correlated symbols.
    timestamp_us = pd.to_datetime(closed["timestamp"]).to_numpy(dtype="datetime64[us]").astype(np.float64)
    block_us = paired_block_us(policy.labels.horizon, timeframe_ms(policy.data.timeframe))
    window = PerformanceWindow(direction, realized, timestamp_us, block_us)
    outcome = evaluate_performance(window, metrics, config.ks_test_threshold, policy.supervisor.min_outcomes)
    result = DriftResult("performance", outcome.severity, model_type, model_id, threshold=config.ks_test_threshold)
    result.summary = outcome.summary
    if not outcome.checked:
        result.checked, result.reason = False, outcome.reason
        return result
    result.findings = [DriftFinding(name, p, outcome.summary) for name, p in outcome.failing]
    return _record(container, result)
