"""One feature-drift check, pure: reference statistics and a current matrix in, findings out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.drift_detector.ecdf import compare
from app.drift_detector.reference import ReferenceStats
from app.drift_detector.stats import (
    Severity,
    SeverityInputs,
    benjamini_hochberg,
    classify_severity,
    effective_sizes,
    ks_pvalues,
    ks_pvalues_effective,
    lag1_autocorrelation,
    lattice_statistic,
    material_mask,
    proportions_from_edge_counts,
    psi,
)


@dataclass(frozen=True)
class FeatureDriftReport:
    feature_names: list[str]
    ks_statistic: NDArray[np.float64]
    p_value: NDArray[np.float64]  # iid KS p-value: ks_2samp's, or its asymptotic one where bounded (stats)
    p_value_effective: NDArray[np.float64]  # with effective sample sizes (autocorrelation)
    p_adjusted: NDArray[np.float64]  # Benjamini-Hochberg of p_value_effective across the features
    psi: NDArray[np.float64]
    significant: NDArray[np.bool_]
    material: NDArray[np.bool_]
    n_reference: NDArray[np.int64]
    n_current: NDArray[np.int64]
    methods: list[str]
    severity: Severity
    alpha: float
    psi_threshold: float

    @property
    def drifted_features(self) -> list[str]:
        return [self.feature_names[i] for i in np.flatnonzero(self.significant)]

    def summary(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "features_checked": len(self.feature_names),
            "significant": int(self.significant.sum()),
            "material": int(self.material.sum()),
            "max_ks": float(self.ks_statistic.max()),
            "max_psi": float(self.psi.max()),
            "min_p_adjusted": float(self.p_adjusted.min()),
            "alpha": self.alpha,
            "fdr": "benjamini-hochberg",
        }


def evaluate_feature_drift(
    reference: ReferenceStats,
    current: NDArray[np.float64],
    alpha: float = 0.05,
    psi_threshold: float = 0.2,
) -> FeatureDriftReport:
    """KS (exact statistic, scipy's p-value), PSI, BH-adjusted significance and severity.

    `current` is (rows, features) in `reference.feature_names` order, rows in time order;
    NaN values are ignored per feature. Significance uses the effective-size p-values
    (autocorrelation, see `stats`), Benjamini-Hochberg-adjusted across the features.
    """
    current = np.asarray(current, dtype=np.float64)
    if current.ndim != 2 or current.shape[1] != len(reference.feature_names):
        raise ValueError(
            f"current matrix has shape {current.shape}, expected (rows, {len(reference.feature_names)}) "
            f"for features {reference.feature_names}"
        )
    key = (_fingerprint(reference), _digest(current), alpha, psi_threshold)
    if key in _RECENT:  # the same training rows and window: a drift check's other model of the same job
        return _RECENT[key]
    report = _evaluate(reference, current, alpha, psi_threshold)
    _RECENT[key] = report
    while len(_RECENT) > _RECENT_REPORTS:
        _RECENT.pop(next(iter(_RECENT)))
    return report


# A drift check compares the same current window with each ACTIVE model's reference, and the models one
# retraining job trained (one per type) share their training rows: the same comparison, made once.
_RECENT: dict[tuple[str, str, float, float], FeatureDriftReport] = {}
_RECENT_REPORTS = 4


def _digest(array: NDArray[np.float64]) -> str:
    data = np.ascontiguousarray(array)
    return f"{data.shape}:" + hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()


def _fingerprint(reference: ReferenceStats) -> str:
    """The reference's content (not its metadata: model id and type differ between the models of a job)."""
    parts = [
        _digest(reference.sorted_values),
        _digest(reference.counts.astype(np.float64)),
        _digest(reference.psi_edges),
        _digest(reference.psi_edge_counts.astype(np.float64)),
        _digest(reference.autocorrelation),
        _digest(np.concatenate([reference.grid.origin, reference.grid.scale, reference.grid.shift])),
        _digest(reference.grid.cumulative[:, -1:].astype(np.float64)),
        "\x1f".join(reference.feature_names),
    ]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()


def _evaluate(
    reference: ReferenceStats, current: NDArray[np.float64], alpha: float, psi_threshold: float
) -> FeatureDriftReport:
    result = compare(reference.sorted_values, reference.counts, reference.grid, current, reference.psi_edges)
    statistic = lattice_statistic(result.statistic, reference.counts, result.current_counts)
    current_rho = np.array([lag1_autocorrelation(current[:, f]) for f in range(current.shape[1])])
    p_value_effective = ks_pvalues_effective(
        statistic,
        effective_sizes(reference.counts, reference.autocorrelation),
        effective_sizes(result.current_counts, current_rho),
    )
    # The exact iid p-value only where it could exceed the effective one (the max below).
    statistic, p_value, methods = ks_pvalues(
        statistic, reference.counts, result.current_counts, exact_needed_above=p_value_effective
    )
    # An effective p-value never claims more than the iid one.
    p_value_effective = np.maximum(p_value_effective, p_value)
    p_adjusted = benjamini_hochberg(p_value_effective)
    psi_values = psi(
        proportions_from_edge_counts(reference.psi_edge_counts, reference.counts),
        proportions_from_edge_counts(result.current_at_or_below_edges, result.current_counts),
    )
    significant = p_adjusted < alpha
    inputs = SeverityInputs(significant, statistic, psi_values, psi_threshold)
    return FeatureDriftReport(
        feature_names=list(reference.feature_names),
        ks_statistic=statistic,
        p_value=p_value,
        p_value_effective=p_value_effective,
        p_adjusted=p_adjusted,
        psi=psi_values,
        significant=significant,
        material=material_mask(inputs),
        n_reference=reference.counts,
        n_current=result.current_counts,
        methods=methods,
        severity=classify_severity(inputs),
        alpha=alpha,
        psi_threshold=psi_threshold,
    )
