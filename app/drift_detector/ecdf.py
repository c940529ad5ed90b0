"""Exact two-sample ECDF comparison of many features at once, against a presorted reference.

`ks_and_psi_counts` returns, for every feature, the exact two-sided KS statistic (the same
numbers `scipy.stats.ks_2samp` computes) and the exact counts of current values at or below
each PSI bin edge, without sorting the current sample.

How (bucket bound and refine, all exact):
1. Each feature's reference range [q0.0005, q0.9995] is cut into `GRID_BUCKETS` equal-width
   buckets (values outside go to the first / last bucket). The reference's cumulative counts
   per bucket are computed once (`ReferenceGrid`, built with the reference).
2. One vectorised pass over the current 2-D array (in row chunks) computes every value's
   bucket and counts them per bucket: the ECDFs of both samples are then known exactly at
   every bucket boundary, which gives a lower bound on D+ = max(F_ref - F_cur) and D- =
   max(F_cur - F_ref), and for every bucket an upper bound of what could happen inside it.
3. Only buckets whose upper bound beats the lower bound (typically a few dozen of tens of
   thousands), plus the buckets holding PSI edges, are refined: their current values are
   gathered and sorted, and the ECDFs are evaluated exactly at each of their data points.

Ties are handled as scipy does (right-continuous ECDFs evaluated at every data point).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

GRID_BUCKETS = 1 << 15
_TAIL_QUANTILE = 0.0005
_CHUNK_ROWS = 1 << 15


@dataclass(frozen=True)
class ReferenceGrid:
    """Bucket grid of the reference, per feature: origin, scale and cumulative counts."""

    origin: NDArray[np.float64]  # (F,)
    scale: NDArray[np.float64]  # (F,) buckets per unit of value
    cumulative: NDArray[np.int64]  # (F, B + 1): reference values in buckets < b


def _bucket_of(values: NDArray[np.float64], origin: NDArray[np.float64], scale: NDArray[np.float64]) -> NDArray:
    """Bucket index per value (monotone in the value, so each bucket is a value interval)."""
    position = (values - origin) * scale
    np.clip(position, 0, GRID_BUCKETS - 1, out=position)
    with np.errstate(invalid="ignore"):  # NaN casts to an arbitrary int; callers mask NaN
        return position.astype(np.int32)


def build_grid(sorted_values: NDArray[np.float64], counts: NDArray[np.int64]) -> ReferenceGrid:
    """The grid of a reference given as (F, N) rows sorted ascending, NaN padding after `counts`."""
    features = sorted_values.shape[0]
    origin = np.empty(features)
    scale = np.empty(features)
    cumulative = np.zeros((features, GRID_BUCKETS + 1), dtype=np.int64)
    for f in range(features):
        column = sorted_values[f, : counts[f]]
        low = column[int(_TAIL_QUANTILE * (len(column) - 1))]
        high = column[int((1 - _TAIL_QUANTILE) * (len(column) - 1))]
        width = high - low
        origin[f] = low
        # A constant (or unbounded) column gets scale 1: still monotone, just coarse.
        scale[f] = GRID_BUCKETS / width if width > 0 and np.isfinite(width) else 1.0
        buckets = _bucket_of(column, origin[f : f + 1], scale[f : f + 1])
        np.cumsum(np.bincount(buckets, minlength=GRID_BUCKETS), out=cumulative[f, 1:])
    return ReferenceGrid(origin, scale, cumulative)


@dataclass(frozen=True)
class EcdfComparison:
    statistic: NDArray[np.float64]  # (F,) two-sided KS statistic D
    current_counts: NDArray[np.int64]  # (F,) non-NaN current values per feature
    current_at_or_below_edges: NDArray[np.int64]  # (F, E) current values <= each PSI edge


class _FeatureBuckets:
    """Bucket indices of one current column at a time, in buffers reused across features.

    Fresh large allocations are slow (page faults), so a check of 64 columns reuses two.
    """

    def __init__(self, rows: int) -> None:
        self.position = np.empty(min(rows, _CHUNK_ROWS))
        self.index = np.empty(rows, dtype=np.int32)

    def fill(self, column: NDArray[np.float64], origin: float, scale: float) -> NDArray[np.int32]:
        """Bucket of each value; NaN goes to the extra bucket GRID_BUCKETS."""
        for start in range(0, len(column), _CHUNK_ROWS):
            part = column[start : start + _CHUNK_ROWS]
            position = self.position[: len(part)]
            np.subtract(part, origin, out=position)
            np.multiply(position, scale, out=position)
            np.minimum(position, GRID_BUCKETS - 1, out=position)
            np.maximum(position, 0, out=position)
            with np.errstate(invalid="ignore"):
                np.copyto(self.index[start : start + len(part)], position, casting="unsafe")
        if np.isnan(column.sum()):  # rare; the sum is a cheap NaN probe (inf - inf also lands here)
            self.index[np.isnan(column)] = GRID_BUCKETS
        return self.index


def compare(
    sorted_reference: NDArray[np.float64],
    reference_counts: NDArray[np.int64],
    grid: ReferenceGrid,
    current: NDArray[np.float64],
    psi_edges: NDArray[np.float64],
) -> EcdfComparison:
    """Exact KS statistics and PSI edge counts; `current` is (rows, F), unsorted, may hold NaN.

    A column-major `current` (what `DataFrame.to_numpy()` gives for float columns) is read
    in place; a row-major one is read column by column, more slowly.
    """
    features = current.shape[1]
    statistic = np.empty(features)
    current_counts = np.empty(features, dtype=np.int64)
    edge_counts = np.empty(psi_edges.shape, dtype=np.int64)
    buckets = _FeatureBuckets(current.shape[0])
    edge_buckets = _bucket_of(psi_edges, grid.origin[:, None], grid.scale[:, None])
    for f in range(features):
        column = current[:, f]
        index = buckets.fill(column, float(grid.origin[f]), float(grid.scale[f]))
        per_bucket = np.bincount(index, minlength=GRID_BUCKETS + 1)[:GRID_BUCKETS]
        n_cur = int(per_bucket.sum())
        if n_cur == 0:
            raise ValueError(f"current sample has no finite values in feature column {f}")
        cur_cum = np.zeros(GRID_BUCKETS + 1, dtype=np.int64)
        np.cumsum(per_bucket, out=cur_cum[1:])
        refine, plus_lower, minus_lower = _buckets_to_refine(grid.cumulative[f], cur_cum, int(reference_counts[f]))
        refine[edge_buckets[f]] = True
        table = np.append(refine, False)  # the NaN bucket is never refined
        values = np.sort(column[table[index]])
        statistic[f], edge_counts[f] = _refine_feature(
            sorted_reference[f, : reference_counts[f]], grid.cumulative[f], cur_cum, refine, values, grid, f,
            psi_edges[f], plus_lower, minus_lower, n_cur,
        )  # fmt: skip
        current_counts[f] = n_cur
    return EcdfComparison(statistic, current_counts, edge_counts)


def _buckets_to_refine(
    ref_cum: NDArray[np.int64], cur_cum: NDArray[np.int64], n_ref: int
) -> tuple[NDArray[np.bool_], float, float]:
    """Buckets whose inside could beat the best value known at bucket boundaries, and those bounds."""
    n_cur = float(cur_cum[-1])
    ref_after, ref_before = ref_cum[1:] / n_ref, ref_cum[:-1] / n_ref
    cur_after, cur_before = cur_cum[1:] / n_cur, cur_cum[:-1] / n_cur
    after = ref_after - cur_after  # F_ref - F_cur just after each bucket: exact values
    plus_lower = max(float(after.max()), 0.0)
    minus_lower = max(float(-after.min()), 0.0)
    tolerance = 1e-12  # float rounding of the bounds: refine rather than risk a miss
    # Inside a bucket F_ref - F_cur lies between ref_before - cur_after and ref_after - cur_before.
    refine = (ref_after - cur_before > plus_lower - tolerance) | (cur_after - ref_before > minus_lower - tolerance)
    refine &= (ref_cum[1:] > ref_cum[:-1]) | (cur_cum[1:] > cur_cum[:-1])  # empty buckets hold no point
    return refine, plus_lower, minus_lower


def _refine_feature(
    reference: NDArray[np.float64],
    ref_cum: NDArray[np.int64],
    cur_cum: NDArray[np.int64],
    refine: NDArray[np.bool_],
    values: NDArray[np.float64],
    grid: ReferenceGrid,
    feature: int,
    edges: NDArray[np.float64],
    plus_lower: float,
    minus_lower: float,
    n_cur: int,
) -> tuple[float, NDArray[np.int64]]:
    """Exact D and edge counts of one feature from its refined buckets' current values (sorted)."""
    n_ref = len(reference)
    origin, scale = grid.origin[feature : feature + 1], grid.scale[feature : feature + 1]
    selected_per_bucket = np.zeros(GRID_BUCKETS + 1, dtype=np.int64)
    if len(values):
        np.cumsum(np.bincount(_bucket_of(values, origin, scale), minlength=GRID_BUCKETS), out=selected_per_bucket[1:])

    def current_at_or_below(points: NDArray[np.float64]) -> NDArray[np.int64]:
        # Values in earlier buckets all lie below; in the point's own bucket, count the gathered ones.
        bucket = _bucket_of(points, origin, scale)
        within = np.searchsorted(values, points, side="right") - selected_per_bucket[bucket]
        return cur_cum[bucket] + within

    refined = np.flatnonzero(refine)
    ref_points = (
        np.concatenate([reference[ref_cum[b] : ref_cum[b + 1]] for b in refined]) if len(refined) else values[:0]
    )
    # Both are sorted: evaluating each distinct value once is enough (ties: discrete features).
    points = np.concatenate([_distinct_sorted(values), _distinct_sorted(ref_points)])
    plus, minus = plus_lower, minus_lower
    if len(points):
        diff = np.searchsorted(reference, points, side="right") / n_ref - current_at_or_below(points) / n_cur
        plus = max(plus, float(diff.max()))
        minus = max(minus, float(-diff.min()))
    return max(plus, minus), current_at_or_below(edges)


def _distinct_sorted(values: NDArray[np.float64]) -> NDArray[np.float64]:
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]
