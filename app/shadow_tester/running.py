"""Running statistics of a shadow test: what a decision needs of the first n pairs, kept so that
the next evaluation reads only the pairs closed after them.

A decision (`stats`) uses, per model: the pair count, trades, hits, the sum of per-sample PnL
and the sum of its squared deviations (mean, standard deviation, Sharpe), the max drawdown of
exp(cumsum(pnl)), and the mean of the known confidences; and of the per-sample difference
(shadow - active): its sum and squared deviations (the paired t-test). All of these extend to
more pairs without the earlier ones:

- counts and sums add;
- squared deviations merge by Chan's formula, m2 = m2_a + m2_b + delta^2 n_a n_b / n;
- the drawdown carries the last log equity, its running peak and the largest drop: the cumulative
  sum continues from the carried value, so it is the very sum a full pass computes.

Over one block of pairs every figure is computed with the same numpy operations as
`stats.model_metrics` and `stats.paired_t_pvalues` (bit for bit the same); after extensions the
sums differ from one pass over all pairs by rounding only (the pairwise summation groups the terms
differently), which `tests/unit/test_shadow_running.py` bounds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.shadow_tester.stats import (
    ModelMetrics,
    ShadowEvaluationResult,
    Thresholds,
    TimeBlocks,
    decide,
    per_sample_pnl,
    t_pvalues,
)


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squared deviations from the mean of a sample."""

    n: int = 0
    total: float = 0.0
    m2: float = 0.0

    @staticmethod
    def of(values: NDArray[np.float64]) -> Moments:
        n = int(values.size)
        if n == 0:
            return Moments()
        total = float(values.sum())
        deviation = values - total / n  # as numpy's var: x - sum/n, squared, summed
        return Moments(n, total, float((deviation * deviation).sum()))

    def merged(self, later: Moments) -> Moments:
        if later.n == 0:
            return self
        if self.n == 0:
            return later
        n = self.n + later.n
        delta = later.total / later.n - self.total / self.n
        return Moments(n, self.total + later.total, self.m2 + later.m2 + delta * delta * self.n * later.n / n)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); 0 below two values."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


@dataclass(frozen=True)
class ModelRun:
    """One model's running figures over the pairs so far."""

    pnl: Moments = Moments()
    trades: int = 0
    hits: int = 0
    log_equity: float = 0.0  # sum of per-sample PnL so far, summed one after the other
    peak: float = 0.0  # highest log equity so far (0 before the first pair)
    drop: float = 0.0  # largest fall of the log equity from its running peak
    confidences: int = 0  # known (finite) confidences
    confidence_sum: float = 0.0

    def extended(self, direction: NDArray[np.float64], realized: NDArray[np.float64], fee: float,
                 confidence: NDArray[np.float64]) -> ModelRun:  # fmt: skip
        if direction.size == 0:
            return self
        pnl = per_sample_pnl(direction, realized, fee)
        traded = direction != 0
        log_equity = np.cumsum(np.concatenate(([self.log_equity], pnl)))
        peaks = np.maximum(np.maximum.accumulate(log_equity), self.peak)
        known = confidence[np.isfinite(confidence)]
        return ModelRun(
            pnl=self.pnl.merged(Moments.of(pnl)),
            trades=self.trades + int(traded.sum()),
            hits=self.hits + int((np.sign(direction[traded]) == np.sign(realized[traded])).sum()),
            log_equity=float(log_equity[-1]),
            peak=float(peaks[-1]),
            drop=max(self.drop, float((peaks - log_equity).max())),
            confidences=self.confidences + int(known.size),
            confidence_sum=self.confidence_sum + float(known.sum()) if known.size else self.confidence_sum,
        )

    def metrics(self) -> ModelMetrics:
        """The figures `stats.model_metrics` reports, from the running values."""
        n, std = self.pnl.n, self.pnl.std
        confidence = self.confidence_sum / self.confidences if self.confidences else math.nan
        return ModelMetrics(
            samples=n,
            trades=self.trades,
            hit_rate=self.hits / self.trades if self.trades else 0.0,
            avg_pnl=self.pnl.mean,
            sharpe=self.pnl.mean / std if std > 0 else 0.0,
            max_drawdown_pct=float(-np.expm1(-self.drop) * 100.0) if n else 0.0,
            total_pnl=self.pnl.total,
            avg_confidence=confidence,
        )


@dataclass(frozen=True)
class RunningStats:
    """A shadow test's running statistics over its first `pairs` closed pairs in time order."""

    fee: float
    active: ModelRun = ModelRun()
    shadow: ModelRun = ModelRun()
    difference: Moments = Moments()  # per-sample PnL, shadow - active
    # The paired test's time blocks (`stats.TimeBlocks`, microseconds); 0: a t-test over independent pairs.
    block_us: float = 0.0
    blocks: TimeBlocks | None = None

    @property
    def pairs(self) -> int:
        return self.difference.n

    def extended(
        self,
        active_direction: NDArray[np.float64],
        shadow_direction: NDArray[np.float64],
        realized_return: NDArray[np.float64],
        active_confidence: NDArray[np.float64],
        shadow_confidence: NDArray[np.float64],
        timestamp_us: NDArray[np.float64] | None = None,
    ) -> RunningStats:
        """These statistics with the next pairs (in time order) added; `timestamp_us` (the pairs'
        times) is needed when the test is block-robust (`block_us` > 0)."""
        a_dir, s_dir, ret = (np.asarray(v, dtype=np.float64) for v in (active_direction, shadow_direction,
                                                                       realized_return))  # fmt: skip
        a_conf, s_conf = (np.asarray(v, dtype=np.float64) for v in (active_confidence, shadow_confidence))
        if not (a_dir.shape == s_dir.shape == ret.shape == a_conf.shape == s_conf.shape) or ret.ndim != 1:
            raise ValueError("the pairs' columns must be 1-d arrays of one length")
        for name, values in (("active_direction", a_dir), ("shadow_direction", s_dir)):
            if values.size and not np.isin(values, (-1.0, 0.0, 1.0)).all():
                raise ValueError(f"{name} holds values other than -1, 0, 1")
        if not np.isfinite(ret).all():
            raise ValueError(f"realized_return holds {int((~np.isfinite(ret)).sum())} non-finite values")
        difference = per_sample_pnl(s_dir, ret, self.fee) - per_sample_pnl(a_dir, ret, self.fee)
        blocks = self.blocks
        if self.block_us > 0:
            if timestamp_us is None or np.shape(timestamp_us) != ret.shape:
                raise ValueError("a block-robust shadow test needs every pair's timestamp_us")
            blocks = (blocks or TimeBlocks(self.block_us)).extended(difference, np.asarray(timestamp_us, np.float64))
        return replace(
            self,
            active=self.active.extended(a_dir, ret, self.fee, a_conf),
            shadow=self.shadow.extended(s_dir, ret, self.fee, s_conf),
            difference=self.difference.merged(Moments.of(difference)),
            blocks=blocks,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON document that reads back exactly (floats as hexadecimal strings)."""
        return _encode(asdict(self))

    @staticmethod
    def from_json(document: dict[str, Any]) -> RunningStats:
        def run(values: dict[str, Any]) -> ModelRun:
            return ModelRun(**{**_decode(values, ModelRun), "pnl": Moments(**_decode(values["pnl"], Moments))})

        blocks = document.get("blocks")
        return RunningStats(
            fee=float.fromhex(document["fee"]),
            active=run(document["active"]),
            shadow=run(document["shadow"]),
            difference=Moments(**_decode(document["difference"], Moments)),
            block_us=float.fromhex(document["block_us"]) if "block_us" in document else 0.0,
            blocks=None if blocks is None else TimeBlocks(**_decode(blocks, TimeBlocks)),
        )


def _encode(value: Any) -> Any:
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(values: dict[str, Any], kind: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(kind):
        if isinstance(values[f.name], dict):
            continue
        if values[f.name] is None:
            out[f.name] = None
            continue
        out[f.name] = float.fromhex(values[f.name]) if isinstance(values[f.name], str) else int(values[f.name])
    return out


def evaluate_running(
    running: RunningStats,
    total: int,
    thresholds: Thresholds,
    *,
    shadow_model_id: str = "",
    active_model_id: str | None = None,
) -> ShadowEvaluationResult:
    """`stats.evaluate_pairs` on running statistics of the first `thresholds.decision_samples(total)`
    closed pairs (`total`: every closed pair of the test)."""
    difference = running.difference
    margin = thresholds.non_inferiority_margin
    if running.block_us > 0:
        p_better, p_worse, blocks = (running.blocks or TimeBlocks(running.block_us)).p_values(margin)
        p_values, counted = (p_better, p_worse), blocks
    else:
        p_values, counted = t_pvalues(difference.n, difference.mean, difference.std, margin), None
    return decide(
        running.active.metrics(),
        running.shadow.metrics(),
        difference.mean,
        p_values,
        total,
        thresholds,
        shadow_model_id,
        active_model_id,
        blocks=counted,
        block_us=running.block_us,
    )
