"""Reference statistics artifacts and the pure performance-drift rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.core.artifacts import ArtifactIntegrityError
from app.drift_detector.performance import PerformanceWindow, evaluate_performance
from app.drift_detector.reference import build_reference, load_reference, reference_path, save_reference
from app.drift_detector.stats import Severity


def test_reference_round_trips_through_the_artifact_store_and_refuses_a_changed_file(sqlite_container) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"rsi": rng.uniform(0, 100, 3000), "ret": rng.standard_normal(3000), "other": "x"})
    frame.loc[::10, "ret"] = np.nan
    reference = build_reference(frame, ["rsi", "ret"], {"model_id": "m1", "model_type": "xgboost"})
    assert reference.counts.tolist() == [3000, 2700]
    stored = save_reference(sqlite_container, reference, "models/xgboost/run-1/model.json")
    assert stored.path == "models/xgboost/run-1/drift_reference.npz" == reference_path("models/xgboost/run-1")
    loaded = load_reference(sqlite_container, stored.path, stored.sha256)
    assert loaded.feature_names == ["rsi", "ret"] and loaded.metadata["model_id"] == "m1"
    np.testing.assert_array_equal(loaded.sorted_values, reference.sorted_values)
    np.testing.assert_array_equal(loaded.grid.cumulative, reference.grid.cumulative)
    np.testing.assert_array_equal(loaded.autocorrelation, reference.autocorrelation)
    sqlite_container.artifacts.put_bytes(stored.path, b"tampered")
    with pytest.raises(ArtifactIntegrityError):
        load_reference(sqlite_container, stored.path, stored.sha256)


def test_build_reference_names_bad_columns() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "s": ["x", "y"]})
    with pytest.raises(ValueError, match=r"columns \['b'\]"):
        build_reference(frame, ["a", "b"])
    with pytest.raises(ValueError, match="numeric"):
        build_reference(frame, ["a", "s"])


def _window(wins: int, losses: int) -> PerformanceWindow:
    realized = np.array([0.01] * wins + [-0.01] * losses)
    return PerformanceWindow(np.ones(len(realized)), realized)


def test_performance_severity_follows_the_drop() -> None:
    metrics = {"directional_accuracy": 0.6}
    assert evaluate_performance(_window(60, 40), metrics, 0.05, 30).severity is Severity.NONE
    assert evaluate_performance(_window(440, 560), metrics, 0.05, 30).severity is Severity.CRITICAL
    assert evaluate_performance(_window(480, 520), {"directional_accuracy": 0.59}, 0.05, 30).severity is Severity.HIGH
    few = evaluate_performance(_window(5, 5), metrics, 0.05, 30)
    assert not few.checked and "10 closed trades" in few.reason
    assert not evaluate_performance(_window(60, 40), {}, 0.05, 30).checked


def test_a_loaded_reference_is_kept_per_process_by_path_and_hash(sqlite_container, monkeypatch) -> None:
    from app.drift_detector import model_reference

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.standard_normal(500), "b": rng.uniform(0, 1, 500)})
    first = save_reference(sqlite_container, build_reference(frame, ["a", "b"]), "models/xgboost/run-1/model.json")
    second = save_reference(sqlite_container, build_reference(frame * 2, ["a", "b"]), "models/lgbm/run-1/model.json")
    reads: list[str] = []

    def counting(container, path, sha256):  # type: ignore[no-untyped-def]
        reads.append(path)
        return load_reference(container, path, sha256)

    monkeypatch.setattr(model_reference, "load_reference", counting)
    one = model_reference._loaded(sqlite_container, first.path, first.sha256)
    assert model_reference._loaded(sqlite_container, first.path, first.sha256) is one and len(reads) == 1
    other = model_reference._loaded(sqlite_container, second.path, second.sha256)
    assert len(reads) == 2 and other is not one
    np.testing.assert_array_equal(
        other.sorted_values, load_reference(sqlite_container, second.path, second.sha256).sorted_values
    )
    with pytest.raises(ValueError):
        one.sorted_values[0, 0] = 1.0  # shared: read-only
    with pytest.raises(ArtifactIntegrityError):  # another hash for the same path is read (and refused)
        model_reference._loaded(sqlite_container, first.path, second.sha256)
