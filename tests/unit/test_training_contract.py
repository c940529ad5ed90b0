"""Every model type honours the forecaster contract on small real data (tests/data/ohlcv).

fit -> predict -> store in the artifact store -> load through the hash check -> the same
predictions. Neural models run a few steps on short windows: this tests plumbing, not skill.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.bootstrap import Container
from app.model_training import MODEL_TYPES, ForecasterInputError, ForecastSpec
from app.model_training.splits import chronological_split
from app.model_training.storage import load_forecaster, store_forecaster
from tests.unit.training_helpers import labelled_frame

HORIZON = 6
TINY = {
    "xgboost": {"n_estimators": 30, "max_depth": 4},
    "lightgbm": {"n_estimators": 30, "num_leaves": 15},
    "nhits": {"input_size": 16, "max_steps": 3, "batch_size": 4, "val_check_steps": 1},
    "patchtst": {"input_size": 16, "max_steps": 3, "batch_size": 4, "val_check_steps": 1, "patch_len": 4, "stride": 4},
    "naive": {},
}


@pytest.fixture(scope="module")
def parts() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    frame, features = labelled_frame(horizon=HORIZON, last_rows=700)
    split = chronological_split(frame, 0.8, 0.1, purge=HORIZON)
    return frame.iloc[split.train], frame.iloc[split.valid], frame.iloc[split.test], features


def test_every_model_type_has_tiny_test_settings() -> None:
    assert set(TINY) == set(MODEL_TYPES)


@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_forecaster_contract(
    model_type: str,
    parts: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]],
    sqlite_container: Container,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # to see whether anything (lightning_logs/) lands in the cwd
    train, valid, test, features = parts
    model_class = MODEL_TYPES[model_type]
    assert isinstance(model_class.NEEDS_GPU, bool) and isinstance(model_class.SUPPORTS_EXOGENOUS, bool)
    spec = ForecastSpec(features, HORIZON, TINY[model_type], seed=7, threads=1)
    model = model_class(spec).fit(train, valid)

    predictions = model.predict(test, history=valid)
    assert list(predictions.columns) == ["predicted_return", "direction", "confidence"]
    assert predictions.index.equals(test.index)
    assert np.isfinite(predictions.to_numpy(dtype=float)).all()
    assert set(predictions["direction"].unique()) <= {-1, 0, 1}
    assert predictions["confidence"].between(0, 1).all()
    up = predictions["predicted_return"] > spec.dead_zone
    assert (predictions.loc[up, "direction"] == 1).all()
    if model_type != "naive":
        assert predictions["predicted_return"].std() > 0, "a fitted model should not predict one constant"

    stored, manifest = store_forecaster(sqlite_container, model, f"models/{model_type}/contract", {})
    assert "forecaster.json" in manifest["files"]
    loaded = load_forecaster(sqlite_container, stored.path, stored.sha256)
    assert type(loaded) is model_class
    again = loaded.predict(test, history=valid)
    np.testing.assert_allclose(again.to_numpy(dtype=float), predictions.to_numpy(dtype=float), rtol=1e-5, atol=1e-7)
    assert list(workdir.iterdir()) == [], "training left files in the working directory"


def test_missing_feature_columns_are_named(parts: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]) -> None:
    train, valid, _, features = parts
    model = MODEL_TYPES["xgboost"](ForecastSpec(features, HORIZON, TINY["xgboost"]))
    with pytest.raises(ForecasterInputError, match="rsi_14"):
        model.fit(train.drop(columns=["rsi_14"]), valid)
    with pytest.raises(RuntimeError, match="before fit"):
        model.predict(valid)
