"""Benchmark: a feature drift check of 64 features, 1,000,000 reference and 1,000,000 current rows.

Exact KS statistics (and scipy's p-values) plus PSI on all rows, no subsampling. The reference
side (sorted values, bucket grid, PSI edges) is built once per model in production and is not
timed; the current side is timed from the raw (rows, features) array to the full report.
Baseline in the same run: a Python loop of `scipy.stats.ks_2samp` plus a numpy PSI per feature.

Usage: python bench/drift.py [--features 64] [--rows 1000000] [--skip-scipy]
Last output line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.drift_detector.check import evaluate_feature_drift
from app.drift_detector.reference import reference_from_matrix
from app.drift_detector.stats import PSI_BINS, psi, psi_edges_from_sorted


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _data(features: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reference (F, rows), current (rows, F) column-major, as `DataFrame.to_numpy()` gives it)."""
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((features, rows))
    current = rng.standard_normal((features, rows))
    # Realistic mix: a quarter shifted, a quarter heavy-tailed (lognormal), four discrete (ties).
    current[: features // 4] += 0.05
    for block in (reference, current):
        np.exp(block[features // 4 : features // 2], out=block[features // 4 : features // 2])
        block[-4:] = np.round(block[-4:] * 2)
    return reference, current.T


def _scipy_loop(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy.stats import ks_2samp

    features = reference.shape[0]
    statistic, p_value, psi_values = np.empty(features), np.empty(features), np.empty(features)
    for f in range(features):
        result = ks_2samp(reference[f], current[:, f])
        statistic[f], p_value[f] = result.statistic, result.pvalue
        ref_sorted = np.sort(reference[f])
        edges = psi_edges_from_sorted(ref_sorted, PSI_BINS)
        ref_counts = np.diff(np.concatenate([[0], np.searchsorted(ref_sorted, edges, "right"), [len(ref_sorted)]]))
        cur_counts = np.diff(
            np.concatenate([[0], np.searchsorted(np.sort(current[:, f]), edges, "right"), [current.shape[0]]])
        )
        psi_values[f] = psi(ref_counts / len(ref_sorted), cur_counts / current.shape[0])
    return statistic, p_value, psi_values


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-scipy", action="store_true")
    args = parser.parse_args()

    reference_columns, current = _data(args.features, args.rows, seed=7)
    names = [f"feature_{i}" for i in range(args.features)]
    started = time.perf_counter()
    reference = reference_from_matrix(reference_columns, names)
    reference_build_seconds = time.perf_counter() - started

    started = time.perf_counter()
    report = evaluate_feature_drift(reference, current)
    seconds = time.perf_counter() - started
    peak_mb = _peak_mb()
    out: dict[str, object] = {
        "features": args.features,
        "reference_rows": args.rows,
        "current_rows": args.rows,
        "seconds": round(seconds, 3),
        "reference_build_seconds_untimed": round(reference_build_seconds, 3),
        "peak_mb": round(peak_mb, 1),
        "peak_mb_note": "process max RSS incl. the generated data and the reference (before the scipy loop)",
        "severity": report.severity.value,
        "significant_features": int(report.significant.sum()),
    }
    if not args.skip_scipy:
        started = time.perf_counter()
        statistic, p_value, psi_values = _scipy_loop(reference_columns, current)
        scipy_seconds = time.perf_counter() - started
        out.update(
            scipy_loop_seconds=round(scipy_seconds, 3),
            speedup=round(scipy_seconds / seconds, 1),
            max_abs_diff_statistic=float(np.abs(statistic - report.ks_statistic).max()),
            max_abs_diff_p_value=float(np.abs(p_value - report.p_value).max()),
            max_abs_diff_psi=float(np.abs(psi_values - report.psi).max()),
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
