"""Drift statistics against scipy and hand computations; severity and false-positive rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from app.drift_detector.check import evaluate_feature_drift
from app.drift_detector.reference import reference_from_matrix
from app.drift_detector.stats import (
    Severity,
    SeverityInputs,
    benjamini_hochberg,
    classify_severity,
    kstwo_sf,
    proportions_from_edge_counts,
    psi,
)


def _names(count: int) -> list[str]:
    return [f"f{i}" for i in range(count)]


def _assert_matches_scipy(reference: np.ndarray, current: np.ndarray) -> None:
    """reference (F, n1), current (n2, F): every feature's statistic and p-value equal scipy's."""
    report = evaluate_feature_drift(reference_from_matrix(reference, _names(len(reference))), current)
    for f in range(len(reference)):
        ref, cur = reference[f], current[:, f]
        expected = scipy_stats.ks_2samp(ref[~np.isnan(ref)], cur[~np.isnan(cur)])
        assert report.ks_statistic[f] == pytest.approx(expected.statistic, abs=1e-9), f
        assert report.p_value[f] == pytest.approx(expected.pvalue, abs=1e-9), f


@pytest.mark.parametrize(
    ("n_reference", "n_current"),
    [(1, 1), (3, 8), (20, 20), (150, 110), (997, 1000), (3000, 9999), (10001, 4000), (30000, 20000)],
)
@pytest.mark.parametrize("kind", ["continuous", "shifted", "ties"])
def test_ks_equals_scipy(n_reference: int, n_current: int, kind: str) -> None:
    rng = np.random.default_rng(n_reference * 31 + n_current)
    if kind == "ties":
        reference = rng.integers(0, 6, size=(3, n_reference)).astype(float)
        current = rng.integers(0, 7, size=(n_current, 3)).astype(float)
    else:
        reference = rng.standard_normal((3, n_reference))
        current = rng.standard_normal((n_current, 3)) + (0.3 if kind == "shifted" else 0.0)
    _assert_matches_scipy(reference, current)


def test_ks_ignores_nan_and_handles_skew_and_constants() -> None:
    rng = np.random.default_rng(5)
    reference = np.stack([np.exp(rng.standard_normal(20000) * 2), np.full(20000, 3.0), rng.standard_normal(20000)])
    current = np.stack(
        [np.exp(rng.standard_normal(15000) * 2 + 0.05), np.full(15000, 3.0), rng.standard_normal(15000)]
    ).T
    current = np.ascontiguousarray(current)  # row-major input works too
    current[::7, 2] = np.nan
    current[:5, 1] = 2.0
    _assert_matches_scipy(reference, current)


def test_exact_p_values_are_cached_and_still_equal_scipy() -> None:
    """Features (and models of one training window) that share sizes and a lattice value hit the cache."""
    from app.drift_detector import check
    from app.drift_detector.stats import _exact_two_sided

    rng = np.random.default_rng(11)
    # Integer-valued features: many share D, so the second and later hit the cache.
    reference = rng.integers(0, 4, size=(6, 900)).astype(float)
    current = rng.integers(0, 4, size=(300, 6)).astype(float)
    _exact_two_sided.cache_clear()
    _assert_matches_scipy(reference, current)
    first = _exact_two_sided.cache_info()
    check._RECENT.clear()  # not the whole report from the cache of comparisons: the p-values from theirs
    _assert_matches_scipy(reference, current)  # the same check again: every p-value from the cache
    second = _exact_two_sided.cache_info()
    assert first.misses >= 1 and second.misses == first.misses and second.hits >= first.hits + 6


@pytest.mark.parametrize("n", [141, 2000, 40000])
def test_kstwo_sf_equals_scipy_in_the_band_scipy_computes_slowly(n: int) -> None:
    d = np.sqrt(np.array([0.5, 2.0, 2.2, 3.0, 6.0, 13.9, 14.0, 30.0, 400.0]) / n)
    expected = [scipy_stats.kstwo.sf(x, n) for x in d]
    np.testing.assert_allclose(kstwo_sf(d, np.full(len(d), float(n))), expected, rtol=0, atol=1e-9)


def test_psi_hand_computed() -> None:
    # Two bins swap mass: 0.25 ln 2 + 0 + 0.25 ln 2.
    assert psi(np.array([0.25, 0.25, 0.5]), np.array([0.5, 0.25, 0.25])) == pytest.approx(0.5 * math.log(2))
    assert psi(np.array([0.2, 0.8]), np.array([0.2, 0.8])) == 0.0


def test_psi_through_reference_deciles() -> None:
    reference = np.arange(1, 101, dtype=float)[None, :]  # deciles 10, 20, ..., 90
    current = np.repeat(np.arange(1, 51, dtype=float), 2)[:, None]  # only the lower half, twice
    report = evaluate_feature_drift(reference_from_matrix(reference, ["x"]), current)
    ref_p, floor = 0.1, 1e-4
    expected = 5 * (0.2 - ref_p) * math.log(0.2 / ref_p) + 5 * (floor - ref_p) * math.log(floor / ref_p)
    assert report.psi[0] == pytest.approx(expected)
    proportions = proportions_from_edge_counts(np.array([[2, 5]]), np.array([10]))
    np.testing.assert_allclose(proportions, [[0.2, 0.3, 0.5]])


def test_benjamini_hochberg() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    rng = np.random.default_rng(1)
    many = rng.uniform(size=64) ** 3
    np.testing.assert_allclose(benjamini_hochberg(many), scipy_stats.false_discovery_control(many, method="bh"))


def _severity(significant: list[bool], ks: list[float], psi_values: list[float]) -> Severity:
    return classify_severity(SeverityInputs(np.array(significant), np.array(ks), np.array(psi_values), 0.2))


def test_severity_table() -> None:
    off = [False] * 10
    assert _severity(off, [0.5] * 10, [1.0] * 10) is Severity.NONE
    # significant but immaterial, or one material feature in ten-plus: LOW
    assert _severity([True, *off[1:]], [0.02] + [0] * 9, [0.01] + [0] * 9) is Severity.LOW
    assert _severity([True] * 5 + off[5:], [0.02] * 10, [0.02] * 10) is Severity.LOW
    assert _severity([True, *off], [0.3] + [0] * 10, [0.5] + [0] * 10) is Severity.LOW
    # 10 % material: by KS size or by PSI size
    assert _severity([True, *off[1:]], [0.15] + [0] * 9, [0.05] + [0] * 9) is Severity.MEDIUM
    assert _severity([True, *off[1:]], [0.02] + [0] * 9, [0.1] + [0] * 9) is Severity.MEDIUM
    assert _severity([True, True, *off[2:]], [0.2, 0.2] + [0] * 8, [0.3, 0.3] + [0] * 8) is Severity.HIGH
    assert _severity([True] * 5 + off[5:], [0.2] * 10, [0.39] * 10) is Severity.HIGH  # PSI short of 2 x 0.2
    assert _severity([True] * 5 + off[5:], [0.2] * 10, [0.1, 0.1, 0.1, 0.1, 0.4] + [0] * 5) is Severity.CRITICAL


def _stationary(rng: np.random.Generator, rows: int, features: int) -> np.ndarray:
    """Features of mixed shapes (normal, lognormal, bounded, discrete), all stationary."""
    columns = [
        rng.standard_normal(rows),
        np.exp(rng.standard_normal(rows)),
        rng.uniform(0, 100, rows),
        rng.integers(0, 24, rows).astype(float),
    ]
    return np.stack([columns[i % 4] * (1 + i // 4) for i in range(features)])


def test_no_false_alarms_without_a_shift() -> None:
    """Over 50 seeded runs without any shift, at most 5 % raise MEDIUM or above."""
    raised = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        reference = reference_from_matrix(_stationary(rng, 20000, 32), _names(32))
        report = evaluate_feature_drift(reference, _stationary(rng, 2016, 32).T)
        raised += report.severity.rank >= Severity.MEDIUM.rank
    assert raised <= 50 * 0.05


def test_an_injected_shift_is_high_or_above() -> None:
    rng = np.random.default_rng(99)
    reference = reference_from_matrix(_stationary(rng, 20000, 32), _names(32))
    current = _stationary(rng, 2016, 32)
    current[:16] = current[:16] * 1.5 + 0.5 * current[:16].std(axis=1, keepdims=True)  # half the features move
    report = evaluate_feature_drift(reference, current.T)
    assert report.severity.rank >= Severity.HIGH.rank, report.summary()
    assert set(report.drifted_features) >= set(_names(32)[:16])


def test_bad_input_is_named() -> None:
    reference = reference_from_matrix(np.zeros((2, 10)), ["a", "b"])
    with pytest.raises(ValueError, match="expected \\(rows, 2\\)"):
        evaluate_feature_drift(reference, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="no finite values"):
        evaluate_feature_drift(reference, np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="no finite values in the training window"):
        reference_from_matrix(np.array([[np.nan, np.nan], [1.0, 2.0]]), ["a", "b"])


def _ar1(rng: np.random.Generator, rows: int, features: int, phi: float) -> np.ndarray:
    from scipy.signal import lfilter

    noise = rng.standard_normal((features, rows))
    noise[:, 0] /= np.sqrt(1 - phi**2)  # start in the stationary distribution
    return lfilter([1.0], [1.0, -phi], noise, axis=1)


def test_autocorrelated_stationary_features_do_not_escalate() -> None:
    """Slow AR(1) features: the iid p-values flag them, the effective-size ones do not."""
    iid_flags, raised = 0, 0
    for seed in range(10):
        rng = np.random.default_rng(1000 + seed)
        series = _ar1(rng, 22016, 8, phi=0.98)
        reference = reference_from_matrix(np.ascontiguousarray(series[:, :20000]), _names(8))
        report = evaluate_feature_drift(reference, series[:, 20000:].T)
        iid_flags += int((benjamini_hochberg(report.p_value) < 0.05).sum())
        raised += report.severity.rank >= Severity.MEDIUM.rank
        np.testing.assert_array_less(report.p_value - 1e-15, report.p_value_effective)
    assert iid_flags > 20  # the naive test cries wolf on most features
    assert raised == 0


def test_the_same_rows_against_the_same_window_are_compared_once() -> None:
    """Two models of one job (same training rows, other metadata) checked on the same window: one comparison."""
    from dataclasses import replace

    from app.drift_detector import check

    rng = np.random.default_rng(8)
    matrix = rng.standard_normal((4, 800))
    xgb = reference_from_matrix(matrix, _names(4), {"model_type": "xgboost", "model_id": "xgboost_v2"})
    lgbm = replace(xgb, metadata={"model_type": "lightgbm", "model_id": "lightgbm_v2"})
    current = rng.standard_normal((300, 4)) + 0.4
    first = evaluate_feature_drift(xgb, current)
    assert evaluate_feature_drift(lgbm, current) is first
    fresh = check._evaluate(lgbm, current, 0.05, 0.2)
    np.testing.assert_array_equal(first.p_adjusted, fresh.p_adjusted)
    assert first.severity == fresh.severity and first.drifted_features == fresh.drifted_features
    other_window = evaluate_feature_drift(lgbm, current[:-1])
    assert other_window is not first and other_window.n_current[0] == 299
    other_rows = reference_from_matrix(matrix[:, :-1], _names(4), {"model_type": "lightgbm"})
    assert evaluate_feature_drift(other_rows, current) is not first
    assert evaluate_feature_drift(xgb, current, alpha=0.01) is not first


@pytest.mark.parametrize(("n1", "n2"), [(2, 3), (17, 40), (300, 300), (2984, 1152), (4608, 1152), (9000, 700)])
def test_the_exact_p_value_bound_holds_against_scipy(n1: int, n2: int) -> None:
    """U = 4 exp(-2 d^2 m n / (sqrt m + sqrt n)^2) is never below ks_2samp's exact p-value."""
    from app.drift_detector.stats import ks_pvalue_upper_bound

    rng = np.random.default_rng(n1 * 7 + n2)
    for shift in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 1.8, 1.9, 2.0, 2.1):  # up to the far tail (p ~ 1e-290)
        a, b = rng.standard_normal(n1), rng.standard_normal(n2) + shift
        exact = scipy_stats.ks_2samp(a, b, method="exact")
        bound = float(ks_pvalue_upper_bound(np.array([exact.statistic]), np.array([n1]), np.array([n2]))[0])
        assert exact.pvalue <= bound * (1 + 1e-9), (shift, exact, bound)


def test_bounded_p_values_decide_as_the_exact_ones() -> None:
    """Autocorrelated features (the market's): the iid p-value is computed exactly only where it could
    exceed the effective one. Elsewhere it is scipy's asymptotic one and ks_2samp's exact value lies
    below the effective p-value, so max(effective, iid), BH, significance and severity are unchanged."""
    from app.drift_detector import check

    rng = np.random.default_rng(21)
    series = _ar1(rng, 4608 + 1152, 12, phi=0.95)
    series[:, 4608:] += np.linspace(0.0, 1.2, 12)[:, None]  # from no shift to a large one
    series[:3] = rng.standard_normal((3, 4608 + 1152))  # iid features: their exact p-value can decide
    reference = reference_from_matrix(np.ascontiguousarray(series[:, :4608]), _names(12))
    check._RECENT.clear()
    report = evaluate_feature_drift(reference, series[:, 4608:].T)
    assert "bounded" in report.methods and "exact" in report.methods, report.methods
    for f in range(12):
        exact = scipy_stats.ks_2samp(series[f, :4608], series[f, 4608:], method="exact")
        assert report.ks_statistic[f] == pytest.approx(exact.statistic, abs=1e-12)
        if report.methods[f] == "exact":
            assert report.p_value[f] == pytest.approx(exact.pvalue, abs=1e-12)
        else:  # both below the p-value that decided: the max took the effective one either way
            assert exact.pvalue < report.p_value_effective[f] and report.p_value[f] < report.p_value_effective[f]
            assert report.p_value[f] == pytest.approx(
                scipy_stats.ks_2samp(series[f, :4608], series[f, 4608:], method="asymp").pvalue, rel=1e-9
            )


def _sample(rng: np.random.Generator, kind: str, n: int, at: float, features: int = 5) -> np.ndarray:
    if kind == "ties":
        return np.round(rng.normal(at, 1.0, (n, features)), 1)
    if kind == "skewed":
        return rng.lognormal(at, 2.0, (n, features))
    values = rng.normal(at, 1.0, (n, features))
    if kind == "nan":
        values[rng.random((n, features)) < 0.05] = np.nan
    return values


@pytest.mark.parametrize("kind", ["normal", "ties", "skewed", "nan"])
def test_small_samples_compared_directly_as_on_the_grid(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below `DIRECT_MAX_POINTS` the ECDFs are compared at every data point: the same D, counts and PSI
    edge counts, bit for bit, as the bucket grid's refinement gives."""
    from app.drift_detector import ecdf

    rng = np.random.default_rng(7)
    for trial in range(20):
        n_reference, n_current = int(rng.integers(2, 4000)), int(rng.integers(1, 3000))
        stored = np.nan_to_num(_sample(rng, kind, n_reference, 0.0))
        reference = reference_from_matrix(np.ascontiguousarray(stored.T), _names(5))
        current = np.asfortranarray(_sample(rng, kind, n_current, float(rng.random())))
        args = (reference.sorted_values, reference.counts, reference.grid, current, reference.psi_edges)
        monkeypatch.setattr(ecdf, "DIRECT_MAX_POINTS", 0)
        grid = ecdf.compare(*args)
        monkeypatch.setattr(ecdf, "DIRECT_MAX_POINTS", 10**9)
        direct = ecdf.compare(*args)
        assert np.array_equal(direct.statistic, grid.statistic), trial
        assert np.array_equal(direct.current_counts, grid.current_counts), trial
        assert np.array_equal(direct.current_at_or_below_edges, grid.current_at_or_below_edges), trial
