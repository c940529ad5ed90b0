"""train_model end to end on the embedded stack: dataset in, stored model, manifest, events, verified load."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import select

from app.core.container import Container
from app.core.db.models import Event
from app.data_pipeline import DatasetSpec, build_dataset, load_dataset
from app.model_training.service import train_model
from app.model_training.storage import load_forecaster
from tests.unit.training_helpers import DATA_DIR


@pytest.fixture
def dataset_id(sqlite_container: Container) -> str:
    # One thread: on the shared 2-core CI machine OpenMP threads spinning against other
    # processes make a two-thread XGBoost fit of this size 5-8x slower.
    sqlite_container.settings.train_threads = 1
    sqlite_container.policy_store.update(
        {"training": {"cv_folds": 2, "xgboost": {"n_estimators": 20}}}, comment="small test training"
    )
    spec = DatasetSpec(
        symbols=("BTC/USDT", "ETH/USDT"),
        timeframe="1h",
        start=datetime(2021, 1, 1),
        end=datetime(2021, 3, 1),
        source="files",
        files={
            "BTC/USDT": str(DATA_DIR / "binance_BTCUSDT_1h.csv"),
            "ETH/USDT": str(DATA_DIR / "binance_ETHUSDT_1h.csv"),
        },
    )
    return build_dataset(sqlite_container, spec).dataset_id


def topics(container: Container) -> list[tuple[str, dict]]:
    with container.session() as session:
        return [(e.topic, e.payload) for e in session.scalars(select(Event).order_by(Event.id))]


@pytest.mark.parametrize("model_type", ["naive", "xgboost"])
def test_train_model_stores_evaluates_and_reloads(
    sqlite_container: Container, dataset_id: str, model_type: str
) -> None:
    trained = train_model(sqlite_container, model_type, dataset_id, job_id="job-1")

    assert trained.file_path == f"models/{model_type}/{trained.run_id}/manifest.json"
    manifest = json.loads(sqlite_container.artifacts.get_bytes(trained.file_path, trained.sha256))
    assert manifest["model_type"] == model_type and manifest["dataset_id"] == dataset_id
    assert manifest["label_settings"] == {"horizon": 12, "fee_pct": 0.1}
    assert manifest["feature_set_id"] == trained.feature_set_id and trained.feature_count >= 50
    assert {"numpy", "pandas", "scikit-learn"} <= set(manifest["library_versions"])
    ranges = manifest["training_data_range"]
    assert ranges["train"]["end_ms"] + 12 * 3_600_000 <= ranges["validation"]["start_ms"]
    for name in manifest["files"]:
        assert sqlite_container.artifacts.exists(f"{trained.artifact_dir}/{name}")

    metrics = trained.metrics
    json.dumps(metrics, allow_nan=False)  # storable as JSONB
    assert {"rmse", "mae", "r2", "accuracy", "f1", "precision", "recall", "directional_accuracy"} <= set(metrics)
    assert {"sharpe", "max_drawdown", "calibration_error"} <= set(metrics)
    assert set(metrics["baselines"]) == {"zero_return", "persistence", "buy_and_hold"}
    assert metrics["baselines"]["zero_return"]["rows"] == metrics["rows"]
    assert metrics["cross_validation"]["folds"] == 2
    assert set(metrics["cross_validation"]["model"]["sharpe"]) == {"mean", "std"}
    if model_type == "naive":  # the persistence forecaster is the persistence baseline
        assert metrics["rmse"] == pytest.approx(metrics["baselines"]["persistence"]["rmse"], rel=1e-4)

    events = [(t, p) for t, p in topics(sqlite_container) if p.get("run_id") == trained.run_id]
    assert [t for t, _ in events] == ["model.training.started", "model.training.completed"]
    assert events[1][1]["sha256"] == trained.sha256 and events[1][1]["job_id"] == "job-1"

    frame, _ = load_dataset(sqlite_container, dataset_id)
    model = load_forecaster(sqlite_container, trained.file_path, trained.sha256)
    predictions = model.predict(frame.tail(50), history=frame.iloc[:-50])
    assert len(predictions) == 50 and predictions["confidence"].between(0, 1).all()


def test_failures_are_reported_and_raised(sqlite_container: Container) -> None:
    with pytest.raises(ValueError, match="unknown model type 'arima'"):
        train_model(sqlite_container, "arima", "no-such-dataset")
    with pytest.raises(Exception, match="no-such-dataset"):
        train_model(sqlite_container, "naive", "no-such-dataset")
    seen = [t for t, p in topics(sqlite_container) if p.get("dataset_id") == "no-such-dataset"]
    assert seen == ["model.training.started", "model.training.failed"]
