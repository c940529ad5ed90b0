"""Adding a model type is one new file plus one line in `MODEL_TYPES`.

The throwaway type below is that file. Registering it (the one line, made here for the test
only) is all it takes for the policy's training section to hold its params with their
bounds, for the contract checks to run it, and for the training service to train, store and
reload it with the policy's settings. The policy's classes are built from the table when
app.core.policy is imported; the fixture rebuilds them as that import would with the line in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import Field, create_model

import app.core.policy
import app.core.policy.schema
import app.core.policy.store
from app.core.container import Container
from app.core.policy import PolicyValidationError, training_config
from app.data_pipeline import DatasetSpec, build_dataset
from app.forecasters import MODEL_TYPES, Forecaster, ModelParams
from app.forecasters.base import TARGET
from app.model_training.service import load_forecaster, train_model
from tests.unit.test_training_contract import check_contract, check_declaration, contract_parts
from tests.unit.training_helpers import DATA_DIR

# --------------------------------------------------------------------------- the new file


class ShrunkLinearParams(ModelParams):
    shrink: float = Field(0.5, gt=0, le=1)  # fraction of the least-squares coefficients kept


class ShrunkLinearForecaster(Forecaster):
    """Least squares on the features, coefficients shrunk towards zero."""

    MODEL_TYPE = "shrunk_linear"
    Params = ShrunkLinearParams
    params: ShrunkLinearParams
    TINY_PARAMS = {"shrink": 0.9}

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return np.nan_to_num(frame[self.spec.feature_columns].to_numpy(dtype=float))

    def _fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> None:
        coefficients, *_ = np.linalg.lstsq(self._matrix(train), train[TARGET].to_numpy(dtype=float), rcond=None)
        self.coefficients = coefficients * self.params.shrink

    def _predict_return(self, frame: pd.DataFrame, history: pd.DataFrame | None) -> np.ndarray:
        return self._matrix(frame) @ self.coefficients

    def _save(self, directory: Path) -> None:
        (directory / "coefficients.json").write_text(json.dumps(self.coefficients.tolist()))

    def _load(self, directory: Path) -> None:
        self.coefficients = np.array(json.loads((directory / "coefficients.json").read_text()))


# --------------------------------------------------------------------------- the one line


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[app.core.policy.Policy]]:
    monkeypatch.setitem(MODEL_TYPES, "shrunk_linear", ShrunkLinearForecaster)
    training = training_config(MODEL_TYPES)
    policy = create_model("Policy", __base__=app.core.policy.Policy, training=(training, training()))
    # the schema module defines them, the store and the package re-use them: the same names everywhere
    for module in (app.core.policy.schema, app.core.policy.store, app.core.policy):
        monkeypatch.setattr(module, "Policy", policy)
    monkeypatch.setattr(app.core.policy.schema, "TrainingConfig", training)
    monkeypatch.setattr(app.core.policy, "TrainingConfig", training)
    yield policy


# --------------------------------------------------------------------------- what follows from it


def test_the_policy_schema_holds_the_new_type(registered: type[app.core.policy.Policy]) -> None:
    schema = json.dumps(registered.model_json_schema())
    assert "ShrunkLinearParams" in schema and '"exclusiveMinimum": 0' in schema
    policy = registered()
    assert policy.training.shrunk_linear == ShrunkLinearParams()
    assert policy.training.xgboost.n_estimators == 300  # the other types are untouched
    check_declaration("shrunk_linear", policy)
    with pytest.raises(PolicyValidationError, match=r"training\.shrunk_linear\.shrink"):
        app.core.policy.validate_policy({"training": {"shrunk_linear": {"shrink": 2}}})


def test_the_contract_checks_run_the_new_type(
    registered: type[app.core.policy.Policy], sqlite_container: Container
) -> None:
    check_contract("shrunk_linear", contract_parts(), sqlite_container)


def test_the_training_service_trains_the_new_type_with_the_policys_params(
    registered: type[app.core.policy.Policy], sqlite_container: Container
) -> None:
    store = sqlite_container.policy_store
    with pytest.raises(PolicyValidationError, match=r"training\.shrunk_linear\.shrink"):
        store.update({"training": {"shrunk_linear": {"shrink": 0}}})
    store.update({"training": {"cv_folds": 2, "shrunk_linear": {"shrink": 0.25}}})
    spec = DatasetSpec(
        symbols=("BTC/USDT",),
        timeframe="1h",
        start=datetime(2021, 1, 1),
        end=datetime(2021, 2, 1),
        source="files",
        files={"BTC/USDT": str(DATA_DIR / "binance_BTCUSDT_1h.csv")},
    )
    dataset_id = build_dataset(sqlite_container, spec).dataset_id

    trained = train_model(sqlite_container, "shrunk_linear", dataset_id)

    assert trained.training_config["hyperparameters"] == {"shrink": 0.25}
    assert "coefficients.json" in trained.manifest["files"]
    loaded = load_forecaster(sqlite_container, trained.file_path, trained.sha256)
    assert isinstance(loaded, ShrunkLinearForecaster) and loaded.params.shrink == 0.25
