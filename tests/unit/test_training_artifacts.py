"""Stored models are loaded only through their hashes: a corrupted or swapped file is refused."""

from __future__ import annotations

import json

import pytest

from app.bootstrap import Container
from app.core.artifacts import ArtifactIntegrityError
from app.forecasters import MODEL_TYPES, ForecastSpec
from app.model_training.splits import chronological_split
from app.model_training.storage import load_forecaster, store_forecaster
from tests.unit.training_helpers import labelled_frame


@pytest.fixture
def stored(sqlite_container: Container) -> tuple[Container, str, str]:
    frame, features = labelled_frame(horizon=6, last_rows=600)
    split = chronological_split(frame, 0.8, 0.1, purge=6)
    model = MODEL_TYPES["xgboost"](ForecastSpec(features, 6, {"n_estimators": 10}))
    model.fit(frame.iloc[split.train], frame.iloc[split.valid])
    artifact, _ = store_forecaster(sqlite_container, model, "models/xgboost/run-1", {"note": "test"})
    return sqlite_container, artifact.path, artifact.sha256


def test_intact_model_loads(stored: tuple[Container, str, str]) -> None:
    container, path, sha = stored
    assert load_forecaster(container, path, sha).MODEL_TYPE == "xgboost"


def test_corrupted_model_file_is_refused(stored: tuple[Container, str, str]) -> None:
    container, path, sha = stored
    model_file = container.artifacts.local_path("models/xgboost/run-1/model.ubj")
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match=r"model\.ubj.*refusing to load"):
        load_forecaster(container, path, sha)


def test_edited_manifest_is_refused(stored: tuple[Container, str, str]) -> None:
    container, path, sha = stored
    manifest = json.loads(container.artifacts.get_bytes(path))
    manifest["files"]["model.ubj"]["sha256"] = "0" * 64
    container.artifacts.put_bytes(path, json.dumps(manifest).encode())
    with pytest.raises(ArtifactIntegrityError, match=r"manifest\.json"):
        load_forecaster(container, path, sha)


def test_a_hash_is_required(stored: tuple[Container, str, str]) -> None:
    container, path, _ = stored
    with pytest.raises(ValueError, match="no sha256"):
        load_forecaster(container, path, None)
    with pytest.raises(ArtifactIntegrityError):
        load_forecaster(container, path, "f" * 64)
