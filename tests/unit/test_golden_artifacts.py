"""Models stored by an earlier version still load and predict the same (tests/data/golden).

Each golden model is copied into the artifact store, registered, and loaded as the
prediction service loads a model: the registry's record, the manifest's hash, every file's
hash, then the library. Its predictions on the recorded input must be the recorded ones.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import numpy as np
import pytest

from app.core.container import Container
from app.forecasters import MODEL_TYPES
from app.model_registry import ModelRegistry
from app.model_training.storage import load_forecaster
from tests.data.golden.make_golden import GOLDEN_DIR, INDEX, INPUT, read_input, sha256, split_input

GOLDEN = json.loads(INDEX.read_text())


def test_every_model_type_has_a_golden_artifact() -> None:
    missing = sorted(set(MODEL_TYPES) - set(GOLDEN["models"]))
    assert not missing, f"run tests/data/golden/make_golden.py --only TYPE for {missing}"
    assert sha256(INPUT) == GOLDEN["input_sha256"]


@pytest.mark.parametrize("model_type", sorted(GOLDEN["models"]))
def test_golden_model_loads_through_the_hash_check_and_predicts_as_recorded(
    model_type: str, sqlite_container: Container
) -> None:
    entry = GOLDEN["models"][model_type]
    source = GOLDEN_DIR / PurePosixPath(entry["manifest"]).parent
    target = f"models/{model_type}/golden"
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        sqlite_container.artifacts.put_file(f"{target}/{path.relative_to(source).as_posix()}", path)
    manifest = json.loads((GOLDEN_DIR / entry["manifest"]).read_text())
    registry = ModelRegistry(sqlite_container)
    model_id = registry.register_model(
        {
            "model_type": model_type,
            "file_path": f"{target}/manifest.json",
            "sha256": entry["sha256"],
            "manifest": manifest,
            "feature_count": len(GOLDEN["feature_columns"]),
        }
    )

    model = load_forecaster(sqlite_container, registry.get_model(model_id))

    assert type(model) is MODEL_TYPES[model_type]
    history, rows = split_input(read_input())
    predicted, direction, confidence = model.predict_arrays(rows, history)
    recorded = entry["predictions"]
    np.testing.assert_allclose(predicted, recorded["predicted_return"], rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(direction, recorded["direction"])
    np.testing.assert_allclose(confidence, recorded["confidence"], rtol=1e-6, atol=1e-9)
