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
# Up to this many reference and current values together, a feature's ECDFs are compared at every
# data point directly: cheaper than the grid's passes over all its buckets (a drift check of a few
# days of candles against a model's training rows: about 4,000 values over 32,768 buckets).
DIRECT_MAX_POINTS = 1 << 13


@dataclass(frozen=True)
class ReferenceGrid:
    """Bucket grid of the reference, per feature: origin, scale, mode and cumulative counts.

    `shift` NaN: buckets are equal-width in the value. Otherwise (skewed features such as
    volumes) they are equal-width in the IEEE-754 order key of (value - shift), which is
    exactly monotone and roughly logarithmic; the mode with the smaller fullest bucket wins.
    """

    origin: NDArray[np.float64]  # (F,)
    scale: NDArray[np.float64]  # (F,) buckets per unit of value (or of key)
    shift: NDArray[np.float64]  # (F,) NaN: value grid; else key grid of value - shift
    cumulative: NDArray[np.int64]  # (F, B + 1): reference values in buckets < b


_MAGNITUDE_BITS = np.int64(0x7FFFFFFFFFFFFFFF)


def _positions(
    values: NDArray[np.float64],
    origin: float,
    scale: float,
    shift: float,
    out: NDArray[np.float64] | None = None,
    bits: NDArray[np.int64] | None = None,
) -> NDArray[np.float64]:
    """Fractional bucket positions, clipped to the grid; monotone in the value (NaN aside)."""
    out = np.empty(values.shape) if out is None else out
    if np.isnan(shift):
        np.subtract(values, origin, out=out)
    else:
        bits = np.empty(values.shape, dtype=np.int64) if bits is None else bits
        np.subtract(values, shift, out=out)
        np.add(out, 0.0, out=out)  # -0.0 becomes +0.0: equal values must get equal keys
        raw = out.view(np.int64)
        np.right_shift(raw, 63, out=bits)  # negative floats: flip the magnitude bits
        np.bitwise_and(bits, _MAGNITUDE_BITS, out=bits)
        np.bitwise_xor(bits, raw, out=bits)
        np.copyto(out, bits, casting="unsafe")  # int64 -> float64 rounding keeps the order
        np.subtract(out, origin, out=out)
    np.multiply(out, scale, out=out)
    np.minimum(out, GRID_BUCKETS - 1, out=out)
    np.maximum(out, 0, out=out)
    return out


def _bucket_of(values: NDArray[np.float64], grid: ReferenceGrid, feature: int) -> NDArray[np.int32]:
    """Bucket index per value (monotone in the value, so each bucket is a value interval)."""
    position = _positions(
        np.asarray(values, dtype=np.float64),
        float(grid.origin[feature]),
        float(grid.scale[feature]),
        float(grid.shift[feature]),
    )
    with np.errstate(invalid="ignore"):  # NaN casts to an arbitrary int; callers mask NaN
        return position.astype(np.int32)


def _fit(column: NDArray[np.float64], shift: float) -> tuple[float, float, NDArray[np.int64]]:
    """Origin, scale and per-bucket counts of one mode for a sorted reference column."""
    raw = column if np.isnan(shift) else _raw_keys(column, shift)
    low = raw[int(_TAIL_QUANTILE * (len(raw) - 1))]
    high = raw[int((1 - _TAIL_QUANTILE) * (len(raw) - 1))]
    width = high - low
    # A constant (or unbounded) column gets scale 1: still monotone, just coarse.
    scale = GRID_BUCKETS / width if width > 0 and np.isfinite(width) else 1.0
    grid = ReferenceGrid(np.array([low]), np.array([scale]), np.array([shift]), np.zeros((1, 1), dtype=np.int64))
    return float(low), float(scale), np.bincount(_bucket_of(column, grid, 0), minlength=GRID_BUCKETS)


def _raw_keys(column: NDArray[np.float64], shift: float) -> NDArray[np.float64]:
    out = np.subtract(column, shift) + 0.0
    raw = out.view(np.int64)
    return (raw ^ ((raw >> 63) & _MAGNITUDE_BITS)).astype(np.float64)


def build_grid(sorted_values: NDArray[np.float64], counts: NDArray[np.int64]) -> ReferenceGrid:
    """The grid of a reference given as (F, N) rows sorted ascending, NaN padding after `counts`."""
    features = sorted_values.shape[0]
    origin, scale, shift = np.empty(features), np.empty(features), np.full(features, np.nan)
    cumulative = np.zeros((features, GRID_BUCKETS + 1), dtype=np.int64)
    for f in range(features):
        column = sorted_values[f, : counts[f]]
        best = _fit(column, np.nan)
        if np.isfinite(column[0]):
            keyed = _fit(column, float(column[0]))
            if keyed[2].max() < best[2].max():
                best, shift[f] = keyed, float(column[0])
        origin[f], scale[f] = best[0], best[1]
        np.cumsum(best[2], out=cumulative[f, 1:])
    return ReferenceGrid(origin, scale, shift, cumulative)


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
        self.bits = np.empty(min(rows, _CHUNK_ROWS), dtype=np.int64)
        self.index = np.empty(rows, dtype=np.intp)  # bincount and indexing want intp: no conversion copies

    def fill(self, column: NDArray[np.float64], grid: ReferenceGrid, feature: int) -> NDArray[np.intp]:
        """Bucket of each value; NaN goes to the extra bucket GRID_BUCKETS."""
        origin, scale, shift = (float(grid.origin[feature]), float(grid.scale[feature]), float(grid.shift[feature]))
        for start in range(0, len(column), _CHUNK_ROWS):
            part = column[start : start + _CHUNK_ROWS]
            position = _positions(part, origin, scale, shift, self.position[: len(part)], self.bits[: len(part)])
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
    for f in range(features):
        column = current[:, f]
        if reference_counts[f] + current.shape[0] <= DIRECT_MAX_POINTS:
            reference = sorted_reference[f, : reference_counts[f]]
            statistic[f], edge_counts[f], current_counts[f] = _direct(reference, column, psi_edges[f], f)
            continue
        index = buckets.fill(column, grid, f)
        per_bucket = np.bincount(index, minlength=GRID_BUCKETS + 1)[:GRID_BUCKETS]
        n_cur = int(per_bucket.sum())
        if n_cur == 0:
            raise ValueError(f"current sample has no finite values in feature column {f}")
        cur_cum = np.zeros(GRID_BUCKETS + 1, dtype=np.int64)
        np.cumsum(per_bucket, out=cur_cum[1:])
        refine, plus_lower, minus_lower = _buckets_to_refine(grid.cumulative[f], cur_cum, int(reference_counts[f]))
        refine[_bucket_of(psi_edges[f], grid, f)] = True
        table = np.append(refine, False)  # the NaN bucket is never refined
        values = np.sort(column[table[index]])
        statistic[f], edge_counts[f] = _refine_feature(
            sorted_reference[f, : reference_counts[f]], grid.cumulative[f], cur_cum, refine, values, grid, f,
            psi_edges[f], plus_lower, minus_lower, n_cur,
        )  # fmt: skip
        current_counts[f] = n_cur
    return EcdfComparison(statistic, current_counts, edge_counts)


def _direct(
    reference: NDArray[np.float64], column: NDArray[np.float64], edges: NDArray[np.float64], feature: int
) -> tuple[float, NDArray[np.int64], int]:
    """(D, current values <= each edge, current count) of a small sample, from both ECDFs at every data
    point (as scipy evaluates them): the same counts, so the same D, as the bucket refinement."""
    values = np.sort(column[~np.isnan(column)])
    n_cur = len(values)
    if n_cur == 0:
        raise ValueError(f"current sample has no finite values in feature column {feature}")
    points = np.concatenate([values, reference])
    diff = np.searchsorted(reference, points, side="right") / len(reference)
    diff -= np.searchsorted(values, points, side="right") / n_cur
    plus, minus = max(float(diff.max()), 0.0), max(float(-diff.min()), 0.0)
    return max(plus, minus), np.searchsorted(values, edges, side="right"), n_cur


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
    """Exact D and edge counts of one feature from its refined buckets' current values (sorted).

    A sample's count at or below x (x in a refined bucket b) is its count below bucket b plus
    the gathered values of bucket b that are <= x: searches stay inside the gathered values.
    """
    n_ref = len(reference)
    cur_gathered_before = np.zeros(GRID_BUCKETS + 1, dtype=np.int64)
    if len(values):
        np.cumsum(np.bincount(_bucket_of(values, grid, feature), minlength=GRID_BUCKETS), out=cur_gathered_before[1:])
    ref_sizes = np.where(refine, ref_cum[1:] - ref_cum[:-1], 0)
    ref_gathered_before = np.zeros(GRID_BUCKETS + 1, dtype=np.int64)
    np.cumsum(ref_sizes, out=ref_gathered_before[1:])
    refined = np.flatnonzero(refine & (ref_sizes > 0))
    ref_points = (
        np.concatenate([reference[ref_cum[b] : ref_cum[b + 1]] for b in refined]) if len(refined) else values[:0]
    )

    def at_or_below(
        gathered: NDArray, before: NDArray, cumulative: NDArray, points: NDArray, bucket: NDArray
    ) -> NDArray:
        return cumulative[bucket] + np.searchsorted(gathered, points, side="right") - before[bucket]

    # Both are sorted: evaluating each distinct value once is enough (ties: discrete features).
    points = np.concatenate([_distinct_sorted(values), _distinct_sorted(ref_points)])
    plus, minus = plus_lower, minus_lower
    if len(points):
        bucket = _bucket_of(points, grid, feature)
        ref_le = at_or_below(ref_points, ref_gathered_before, ref_cum, points, bucket)
        cur_le = at_or_below(values, cur_gathered_before, cur_cum, points, bucket)
        diff = ref_le / n_ref - cur_le / n_cur
        plus = max(plus, float(diff.max()))
        minus = max(minus, float(-diff.min()))
    edge_bucket = _bucket_of(edges, grid, feature)
    return max(plus, minus), at_or_below(values, cur_gathered_before, cur_cum, edges, edge_bucket)


def _distinct_sorted(values: NDArray[np.float64]) -> NDArray[np.float64]:
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]
