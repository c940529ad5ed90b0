"""Every model type honours the forecaster contract on small real data (tests/data/ohlcv).

fit -> predict -> store in the artifact store -> load through the hash check -> the same
predictions. Neural models run a few steps on short windows: this tests plumbing, not skill.
The table of types is `MODEL_TYPES` itself, each with its own `TINY_PARAMS`: a new model type
is checked here without a line added to this file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.core.container import Container
from app.core.policy import Policy
from app.forecasters import MODEL_TYPES, ForecasterInputError, ForecastSpec
from app.model_training.splits import chronological_split
from app.model_training.storage import load_forecaster, store_forecaster
from tests.unit.training_helpers import labelled_frame

HORIZON = 6
Parts = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]


def contract_parts() -> Parts:
    """Train, validation and test parts of two symbols' last 700 hourly candles, and the feature columns."""
    frame, features = labelled_frame(horizon=HORIZON, last_rows=700)
    split = chronological_split(frame, 0.8, 0.1, purge=HORIZON)
    return frame.iloc[split.train], frame.iloc[split.valid], frame.iloc[split.test], features


@pytest.fixture(scope="module")
def parts() -> Parts:
    return contract_parts()


def check_declaration(model_type: str, policy: Policy) -> None:
    """What a model type declares: its name, typed params with defaults, capability flags, its policy section."""
    model_class = MODEL_TYPES[model_type]
    assert model_type == model_class.MODEL_TYPE
    assert isinstance(model_class.NEEDS_GPU, bool) and isinstance(model_class.SUPPORTS_EXOGENOUS, bool)
    assert isinstance(model_class.CAN_USE_GPU, bool) and isinstance(model_class.LIBRARIES, tuple)
    model_class.Params.model_validate(model_class.TINY_PARAMS)  # the tiny settings are valid params
    section = getattr(policy.training, model_type)
    assert type(section) is model_class.Params and section == model_class.Params()  # defaults: one place


def check_contract(model_type: str, parts: Parts, container: Container) -> None:
    """fit, predict, store, load through the hash check: the same predictions."""
    train, valid, test, features = parts
    model_class = MODEL_TYPES[model_type]
    spec = ForecastSpec(features, HORIZON, model_class.TINY_PARAMS, seed=7, threads=1)
    model = model_class(spec).fit(train, valid)
    assert isinstance(model.params, model_class.Params)

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

    stored, manifest = store_forecaster(container, model, f"models/{model_type}/contract", {})
    assert "forecaster.json" in manifest["files"]
    loaded = load_forecaster(container, stored.path, stored.sha256)
    assert type(loaded) is model_class and loaded.params == model.params
    again = loaded.predict(test, history=valid)
    np.testing.assert_allclose(again.to_numpy(dtype=float), predictions.to_numpy(dtype=float), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_model_type_declaration(model_type: str) -> None:
    check_declaration(model_type, Policy())


@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_forecaster_contract(
    model_type: str, parts: Parts, sqlite_container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # to see whether anything (lightning_logs/) lands in the cwd
    check_contract(model_type, parts, sqlite_container)
    assert list(workdir.iterdir()) == [], "training left files in the working directory"


def test_missing_feature_columns_are_named(parts: Parts) -> None:
    train, valid, _, features = parts
    model = MODEL_TYPES["xgboost"](ForecastSpec(features, HORIZON, MODEL_TYPES["xgboost"].TINY_PARAMS))
    with pytest.raises(ForecasterInputError, match="rsi_14"):
        model.fit(train.drop(columns=["rsi_14"]), valid)
    with pytest.raises(RuntimeError, match="before fit"):
        model.predict(valid)


def test_unknown_or_out_of_range_params_are_refused(parts: Parts) -> None:
    features = parts[3]
    with pytest.raises(ValueError, match="max_dept"):
        MODEL_TYPES["xgboost"](ForecastSpec(features, HORIZON, {"max_dept": 3}))
    with pytest.raises(ValueError, match="less than or equal to 1"):
        MODEL_TYPES["lightgbm"](ForecastSpec(features, HORIZON, {"subsample": 1.5}))
