"""Write the golden artifacts: one small saved model per model type, and what it predicted.

    .venv/bin/python tests/data/golden/make_golden.py            # every model type
    .venv/bin/python tests/data/golden/make_golden.py --only foo  # one type (a new one)

tests/unit/test_golden_artifacts.py loads each saved model through the artifact store's hash
check and the registry, exactly as the prediction service does, and expects the predictions
recorded here on the recorded input (`input.csv`). The files are what the code of the day
they were made wrote, so the test proves that models stored by an earlier version still load
and still predict the same.

When to regenerate:
- A new model type: run with `--only <type>`; leave the other types' files alone.
- Never to make a failing golden test pass. A failure means stored models of production no
  longer load or predict differently: fix the code, or, when the change of format or of
  predictions is deliberate (a library upgrade that changes numerics, a new FORMAT_VERSION
  with its migration), say so in the commit and regenerate only the types concerned.

The models are tiny (a few trees; neural models of a few steps with narrow layers) so each
file stays small; every file is in its library's own format, as `store_forecaster` writes it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root, run as a script

from app.core.artifacts import ArtifactStore
from app.forecasters import MODEL_TYPES, Forecaster, ForecastSpec
from app.model_training.splits import chronological_split
from app.model_training.storage import library_versions, store_forecaster
from tests.unit.training_helpers import labelled_frame

ROOT = Path(__file__).resolve().parents[3]
GOLDEN_DIR = Path(__file__).resolve().parent
INDEX = GOLDEN_DIR / "golden.json"
INPUT = GOLDEN_DIR / "input.csv"
HORIZON = 6
HISTORY_ROWS = 24  # per symbol: the context the sequence models read before the predicted rows
PREDICTED_ROWS = 8  # per symbol
SEED = 7
TINY: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 8, "max_depth": 3},
    "lightgbm": {"n_estimators": 8, "num_leaves": 7},
    "nhits": {"input_size": 16, "max_steps": 3, "batch_size": 4, "val_check_steps": 1},
    "patchtst": {"input_size": 16, "max_steps": 3, "batch_size": 4, "val_check_steps": 1, "patch_len": 4, "stride": 4},
    "naive": {},
}
# Narrow layers for the neural models (the library's defaults weigh megabytes); a saved model
# carries its architecture, so it loads with the model type's own class.
NARROW: dict[str, dict[str, Any]] = {
    "nhits": {"mlp_units": [[8, 8]] * 3},
    "patchtst": {"hidden_size": 8, "n_heads": 2, "encoder_layers": 1, "linear_hidden_size": 8},
}


def tiny_class(model_class: type[Forecaster]) -> type[Forecaster]:
    narrow = NARROW.get(model_class.MODEL_TYPE)
    if narrow is None:
        return model_class

    class Narrow(model_class):  # type: ignore[valid-type,misc]
        def model_kwargs(self) -> dict[str, Any]:
            return {**super().model_kwargs(), **narrow}

    return Narrow


def data() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Train and validation parts, and the recorded input (history rows, then predicted rows)."""
    frame, features = labelled_frame(horizon=HORIZON, last_rows=700)
    split = chronological_split(frame, 0.8, 0.1, purge=HORIZON)
    test = frame.iloc[split.test]
    recorded = test.groupby("symbol").tail(HISTORY_ROWS + PREDICTED_ROWS)[["symbol", "timestamp", *features]]
    return frame.iloc[split.train], frame.iloc[split.valid], recorded.reset_index(drop=True), features


def split_input(recorded: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The recorded input -> (history, rows to predict): the last PREDICTED_ROWS per symbol are predicted."""
    position = recorded.groupby("symbol").cumcount()
    predicted = position >= HISTORY_ROWS
    return recorded[~predicted], recorded[predicted]


def read_input() -> pd.DataFrame:
    return pd.read_csv(INPUT)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", help="model type to (re)write; repeatable (default: all)")
    args = parser.parse_args()
    types = args.only or sorted(MODEL_TYPES)
    unknown = [t for t in types if t not in MODEL_TYPES]
    if unknown:
        parser.error(f"unknown model types {unknown}; known: {sorted(MODEL_TYPES)}")

    train, valid, recorded, features = data()
    if not INPUT.exists():
        recorded.to_csv(INPUT, index=False, float_format="%.17g")
    read = read_input()  # predict on exactly what the test will read
    if INPUT.exists() and len(read) == len(recorded):
        assert np.array_equal(read[features].to_numpy(), recorded[features].to_numpy(), equal_nan=True)
    recorded = read
    history, rows = split_input(recorded)
    index = json.loads(INDEX.read_text()) if INDEX.exists() else {"models": {}}
    store = SimpleNamespace(artifacts=ArtifactStore(str(GOLDEN_DIR)))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    for model_type in types:
        model_class = MODEL_TYPES[model_type]
        directory = GOLDEN_DIR / "models" / model_type
        for old in sorted(directory.rglob("*"), reverse=True) if directory.exists() else []:
            old.unlink() if old.is_file() else old.rmdir()
        spec = ForecastSpec(features, HORIZON, TINY.get(model_type, model_class.TINY_PARAMS), seed=SEED, threads=1)
        model = tiny_class(model_class)(spec).fit(train, valid)
        stored, manifest = store_forecaster(store, model, f"models/{model_type}", {"note": "golden artifact"})  # type: ignore[arg-type]
        predicted, direction, confidence = model.predict_arrays(rows, history)
        index["models"][model_type] = {
            "manifest": stored.path,
            "sha256": stored.sha256,
            "made_at_commit": commit,
            "library_versions": library_versions(model_class),
            "size_bytes": sum(f["size_bytes"] for f in manifest["files"].values()),
            "predictions": {
                "predicted_return": [float(v) for v in predicted],
                "direction": [int(v) for v in direction],
                "confidence": [float(v) for v in confidence],
            },
        }
        print(f"{model_type}: {index['models'][model_type]['size_bytes']} bytes, {len(predicted)} predictions")
    index |= {
        "input": INPUT.name,
        "input_sha256": sha256(INPUT),
        "history_rows_per_symbol": HISTORY_ROWS,
        "predicted_rows_per_symbol": PREDICTED_ROWS,
        "horizon": HORIZON,
        "feature_columns": features,
    }
    index["models"] = dict(sorted(index["models"].items()))
    INDEX.write_text(json.dumps(index, indent=1) + "\n")
    assert np.isfinite([p for m in index["models"].values() for p in m["predictions"]["predicted_return"]]).all()


if __name__ == "__main__":
    main()
