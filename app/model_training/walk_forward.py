"""Walk-forward cross-validation split into pieces: one fold's scored test part stored on its own,
and the folds' figures assembled afterwards exactly as `service.cross_validate` computes them.

A fold's result is its `Scored` part (the per-timestamp strategy table and the error metrics),
so pooling the stored folds gives the same pooled walk-forward figures (and bootstrap
intervals) as scoring them in one process. Pure: values in, values and bytes out.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd

from app.model_training.evaluation import Scored, report
from app.model_training.scoring import Bootstrap

CV_METRICS = ("directional_accuracy", "traded_share", "rmse", "r2", "accuracy", "f1", "sharpe", "calibration_error")
FOLD_METRICS = ("sharpe", "directional_accuracy", "traded_share", "annual_return")


def cv_summary(
    scored_folds: list[Scored], *, horizon: int, step_ms: int, bootstrap: Bootstrap | None = None
) -> dict[str, Any]:
    """Per metric the mean and spread (std) of the model and of persistence over the folds, each
    fold's headline figures, and the test parts pooled (`pooled`: with intervals)."""
    per_fold = [report([s], horizon=horizon, step_ms=step_ms, bootstrap=Bootstrap(replicates=0)) for s in scored_folds]
    summary: dict[str, Any] = {"folds": len(per_fold)}
    for who in ("model", "persistence"):
        rows = [r["model"] if who == "model" else r["baselines"]["persistence"] for r in per_fold]
        summary[who] = {
            name: {
                "mean": float(np.nanmean([r[name] for r in rows])),
                "std": float(np.nanstd([r[name] for r in rows])),
            }
            for name in CV_METRICS
        }
    summary["per_fold"] = [
        {
            who: {k: (r["model"] if who == "model" else r["baselines"][who])[k] for k in FOLD_METRICS}
            for who in ("model", "zero_return", "persistence", "buy_and_hold")
        }
        for r in per_fold
    ]
    summary["pooled"] = report(scored_folds, horizon=horizon, step_ms=step_ms, bootstrap=bootstrap)
    return summary


def scored_to_bytes(scored: Scored) -> tuple[bytes, bytes]:
    """(Parquet of the strategy table, JSON of the error metrics): a fold's stored result."""
    sink = io.BytesIO()
    scored.table.to_parquet(sink, index=True)
    errors = json.dumps({"errors": scored.errors, "exact_book": scored.exact_book}, allow_nan=True)
    return sink.getvalue(), errors.encode()


def scored_from_bytes(table: bytes, errors: bytes) -> Scored:
    document = json.loads(errors)
    frame = pd.read_parquet(io.BytesIO(table))
    return Scored(frame, document["errors"], bool(document["exact_book"]))
