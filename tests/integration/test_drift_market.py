"""Drift against the data pipeline's synthetic market on PostgreSQL: a model's own reference."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app.core.clock import utcnow
from app.core.db.models import DriftEvent, ModelRegistry
from app.data_pipeline.dataset import DatasetSpec, build_dataset, load_dataset
from app.data_pipeline.features import CALENDAR_FEATURES
from app.drift_detector.model_reference import (
    MANIFEST_KEY,
    NoReferenceError,
    build_model_reference,
    check_model_feature_drift,
    reference_for_model,
)
from app.drift_detector.stats import Severity

pytestmark = pytest.mark.integration

START = datetime(2025, 1, 1)
TRAIN_END = START + timedelta(days=20)
END = TRAIN_END + timedelta(days=7)


def _market(container, shift: bool):
    spec = DatasetSpec(
        symbols=("BTC/USDT",), start=START, end=END, source="synthetic", seed=5, shift_at=TRAIN_END if shift else None
    )
    dataset_id = build_dataset(container, spec).dataset_id
    frame, manifest = load_dataset(container, dataset_id)
    return frame, {**manifest, "dataset_id": dataset_id}


def _register(container, manifest: dict, frame) -> None:
    """An ACTIVE model trained on the first 20 days, with the manifest model training writes."""
    train = frame[frame["timestamp"] < int(TRAIN_END.timestamp() * 1000)]
    model_manifest = {
        "dataset_id": manifest["dataset_id"],
        "feature_columns": manifest["feature_columns"],
        "training_data_range": {
            "train": {"start_ms": int(train["timestamp"].min()), "end_ms": int(train["timestamp"].max())}
        },
    }
    with container.session() as session:
        session.add(
            ModelRegistry(
                model_id="xgb-1",
                model_type="xgboost",
                version="1",
                status="ACTIVE",
                metrics={},
                manifest=model_manifest,
                created_at=utcnow(),
                file_path="models/xgboost/run-1/model.json",
            )
        )


def test_injected_market_shift_is_high_and_the_stationary_market_is_not(pg_container) -> None:
    quiet, manifest = _market(pg_container, shift=False)
    _register(pg_container, manifest, quiet)
    entry = build_model_reference(pg_container, "xgb-1")
    assert entry["path"] == "models/xgboost/run-1/drift_reference.npz"
    assert build_model_reference(pg_container, "xgb-1") == entry  # idempotent
    with pg_container.session_factory() as session:
        assert session.get(ModelRegistry, "xgb-1").manifest[MANIFEST_KEY]["sha256"] == entry["sha256"]

    after = int(TRAIN_END.timestamp() * 1000)
    calm = check_model_feature_drift(pg_container, "xgboost", quiet[quiet["timestamp"] >= after])
    shifted_frame, _ = _market(pg_container, shift=True)
    shifted = check_model_feature_drift(pg_container, "xgboost", shifted_frame[shifted_frame["timestamp"] >= after])

    assert shifted.severity.rank >= Severity.HIGH.rank, shifted.summary
    assert calm.severity.rank < shifted.severity.rank, (calm.summary, shifted.summary)
    with pg_container.session_factory() as session:
        rows = session.scalars(select(DriftEvent).where(DriftEvent.severity == shifted.severity.value)).all()
    assert len(rows) >= len(shifted.findings) > 0
    with pytest.raises(NoReferenceError, match="no ACTIVE lightgbm"):
        check_model_feature_drift(pg_container, "lightgbm", quiet)


def test_the_calendar_features_are_not_checked_for_drift(pg_container) -> None:
    # A current window of other weekdays or hours than the training window differs in the calendar
    # features by construction (in the main run's replays, `dow_sin` was among the drift checks'
    # strongest findings a day after the shift): they are left out of the reference, the market's
    # own features are all there, and a check on three days of the unchanged market names none.
    quiet, manifest = _market(pg_container, shift=False)
    _register(pg_container, manifest, quiet)
    names = reference_for_model(pg_container, "xgb-1").feature_names
    assert not set(names) & set(CALENDAR_FEATURES)
    assert set(names) == set(manifest["feature_columns"]) - set(CALENDAR_FEATURES)
    after = int(TRAIN_END.timestamp() * 1000)
    three_days = quiet[(quiet["timestamp"] >= after) & (quiet["timestamp"] < after + 3 * 86_400_000)]
    calm = check_model_feature_drift(pg_container, "xgboost", three_days)
    assert calm.checked and not {f.feature for f in calm.findings} & set(CALENDAR_FEATURES), calm.summary
