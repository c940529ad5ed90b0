"""Shadow-test statistics: pure, vectorised numpy over paired samples.

Per-sample PnL (the definition every metric here rests on)
    pnl = direction * realized_return - |direction| * round_trip_fee

`direction` is the model's call (-1 short, 0 flat, 1 long); `realized_return` is the
market's log return over the prediction's horizon (as a fraction, 0.01 = 1 %);
`round_trip_fee` is the fee of entering and leaving (2 x the policy's `labels.fee_pct`
/ 100). A flat call trades nothing and earns 0. Summing log-return PnL is compounding
at full size, so the equity curve is exp(cumsum(pnl)).

Recommendation (policy `clm_config.auto_promote_threshold`)
- The decision is taken at fixed looks, not at every evaluation: after `min_samples`
  resolved pairs, then 2x, 4x ... up to `max_samples` (1000, 2000, 4000, 8000 by
  default), each on the first n_k pairs in time order. A test re-run on every new
  sample until it says "better" promotes noise sooner or later (optional stopping);
  with fixed looks and the significance level split over them, the chance that an
  equally good shadow is ever promoted stays below `significance_level`. The split
  (Bonferroni, so it holds whatever the looks' correlation): half at the first look,
  where most real improvements show, the other half shared by the later looks.
- CONTINUE_TESTING before the first look.
- At a look, PROMOTE when all hold: the shadow's hit rate beats the active's by at least
  `min_improvement_pct` percent (relative); its mean per-sample PnL is higher and a
  one-sided paired test on the per-sample difference (shadow - active) gives p below the
  look's level (block-robust over time, `TimeBlocks`, where the pairs' timestamps are known,
  as in the service; a t-test over independent pairs otherwise); and its max drawdown is at
  most `max_drawdown_pct` percentage points worse than the active's on the same samples. The drawdown limit is
  relative because an absolute cap on a curve of un-sized returns depends on the sample
  count and the market's volatility, not on the model; compared on the same samples, it
  says "no riskier than what runs now". It compares the books' drawdowns: the pairs' equity
  exp(cumsum(pnl)) holds every pair whole, so with labels of `horizon` candles asked hourly on
  many symbols it is levered by the pairs open at once (up to 12 for 12-candle 15m labels asked
  hourly on 4 symbols), and its drawdowns are that many times a book's. Where the test is
  block-robust, the log drawdown is divided by that concurrency (the pairs a time block holds
  over its `BLOCK_HORIZONS` horizons; `pair_concurrency` in the result); the metrics report the
  pairs' equity as before.
- After a regime change (`Thresholds.non_inferiority_margin` > 0, chosen by
  `app/shadow_tester/regime.py`), PROMOTE asks instead that the shadow's per-pair PnL be shown
  above the active's minus the margin (the same test with every difference moved up by the
  margin), with the same drawdown limit and no hit-rate gain.
- REJECT when the active is significantly better at a look (the same test the other
  way, no margin, under either rule), or when the last look (`max_samples`) has passed
  without a promotion: a shadow test ends.
- CONTINUE_TESTING otherwise, until the next look.

The metrics and p-values reported are those of the latest look (`decision_samples`
pairs); `total_samples` counts every resolved pair.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as scipy_stats

Recommendation = Literal["PROMOTE", "REJECT", "CONTINUE_TESTING"]


@dataclass(frozen=True)
class ModelMetrics:
    samples: int
    trades: int  # samples with a non-flat call
    hit_rate: float  # share of non-flat calls whose sign matches the realized return
    avg_pnl: float  # mean per-sample PnL, fraction (0.001 = 0.1 %)
    sharpe: float  # mean / std of per-sample PnL (per sample, not annualised)
    max_drawdown_pct: float  # largest peak-to-trough fall of exp(cumsum(pnl)), percent
    total_pnl: float
    avg_confidence: float


@dataclass(frozen=True)
class Thresholds:
    min_samples: int = 1000
    min_improvement_pct: float = 5.0
    max_drawdown_pct: float = 3.0
    significance_level: float = 0.05
    max_samples: int | None = None  # the last look; None: 8 x min_samples
    # > 0: a non-inferiority test (after a regime change, `app/shadow_tester/regime.py`): the shadow
    # is promoted when its per-pair PnL is shown to trail the active's by less than this margin.
    non_inferiority_margin: float = 0.0

    def looks(self) -> list[int]:
        """Sample counts at which a decision is taken: min_samples x 2^k up to max_samples."""
        last = self.max_samples if self.max_samples is not None else 8 * self.min_samples
        looks = [self.min_samples]
        while looks[-1] * 2 <= last:
            looks.append(looks[-1] * 2)
        return looks

    def decision_samples(self, total: int) -> int:
        """How many of `total` closed pairs (the first, in time order) the decision reads: the
        latest look passed, or all of them before the first look."""
        passed = [n for n in self.looks() if n <= total]
        return passed[-1] if passed else total

    def level(self, look: int) -> float:
        """The significance level of look `look` (0-based): half the level at the first, the
        other half split over the rest (their sum is `significance_level`)."""
        later = len(self.looks()) - 1
        if later == 0:
            return self.significance_level
        return self.significance_level / 2 if look == 0 else self.significance_level / 2 / later


@dataclass(frozen=True)
class ShadowEvaluationResult:
    shadow_model_id: str
    active_model_id: str | None
    total_samples: int
    active_metrics: ModelMetrics
    shadow_metrics: ModelMetrics
    improvement_pct: float  # relative hit-rate improvement of the shadow, percent
    pnl_difference: float  # mean per-sample (shadow - active)
    p_value_better: float  # one-sided paired test: shadow better
    p_value_worse: float  # one-sided paired test: shadow worse
    recommendation: Recommendation
    reasons: list[str] = field(default_factory=list)
    decision_samples: int = 0  # pairs of the latest look, which the metrics describe
    next_look_samples: int | None = None  # when the next decision is due (None: test over)
    significance_level: float | None = None  # the latest look's level
    # The paired test's independent units: time blocks of `block_hours` (all symbols together), or
    # None where the pairs were taken as independent (no timestamps given).
    test_blocks: int | None = None
    block_hours: float | None = None
    # "superiority": the shadow must be shown better; "non_inferiority": shown no worse than the
    # active by more than `non_inferiority_margin` per pair (p_value_better is then that test's).
    rule: str = "superiority"
    non_inferiority_margin: float = 0.0
    # Pairs open at once (block-robust tests; 1 otherwise): the drawdown limit compares the books'
    # drawdowns, the pairs' equity's log drawdown divided by this (see module doc).
    pair_concurrency: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite floats become None)."""
        return _json_safe(asdict(self))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def round_trip_fee(fee_pct_per_side: float) -> float:
    """The policy's per-side fee in percent as a round-trip fraction (0.1 -> 0.002)."""
    return 2.0 * fee_pct_per_side / 100.0


def per_sample_pnl(direction: ArrayLike, realized_return: ArrayLike, fee: float) -> NDArray[np.float64]:
    """direction * realized_return - |direction| * fee, elementwise (see module doc)."""
    d = np.asarray(direction, dtype=np.float64)
    r = np.asarray(realized_return, dtype=np.float64)
    return d * r - np.abs(d) * fee


def max_drawdown_pct(pnl: NDArray[np.float64]) -> float:
    """Largest fall from a running peak of the equity exp(cumsum(pnl)), in percent."""
    if pnl.size == 0:
        return 0.0
    log_equity = np.concatenate(([0.0], np.cumsum(pnl)))
    drop = np.maximum.accumulate(log_equity) - log_equity
    return float(-np.expm1(-drop.max()) * 100.0)


def model_metrics(
    direction: NDArray[Any], realized_return: NDArray[np.float64], fee: float, confidence: NDArray[Any] | None = None
) -> ModelMetrics:
    pnl = per_sample_pnl(direction, realized_return, fee)
    d = np.asarray(direction, dtype=np.float64)
    traded = d != 0
    trades = int(traded.sum())
    hits = int((np.sign(d[traded]) == np.sign(realized_return[traded])).sum()) if trades else 0
    std = float(pnl.std(ddof=1)) if pnl.size > 1 else 0.0
    known = confidence[np.isfinite(confidence)] if confidence is not None else np.empty(0)
    conf = float(known.mean()) if known.size else math.nan
    return ModelMetrics(
        samples=int(pnl.size),
        trades=trades,
        hit_rate=hits / trades if trades else 0.0,
        avg_pnl=float(pnl.mean()) if pnl.size else 0.0,
        sharpe=float(pnl.mean()) / std if std > 0 else 0.0,
        max_drawdown_pct=max_drawdown_pct(pnl),
        total_pnl=float(pnl.sum()),
        avg_confidence=conf,
    )


def paired_t_pvalues(difference: NDArray[np.float64], margin: float = 0.0) -> tuple[float, float]:
    """One-sided p-values (mean > 0, mean < 0) of a paired t-test on `difference` (`margin`: see `t_pvalues`)."""
    n = difference.size
    if n < 2:
        return 1.0, 1.0
    return t_pvalues(n, float(difference.mean()), float(difference.std(ddof=1)), margin)


def t_pvalues(n: int, mean: float, std: float, margin: float = 0.0) -> tuple[float, float]:
    """`paired_t_pvalues` from the difference's count, mean and sample standard deviation.

    `margin` > 0: the first p-value is the non-inferiority test's (mean > -margin); the second
    is always the plain test of mean < 0."""
    if n < 2:
        return 1.0, 1.0
    if std == 0.0:  # identical calls on every sample, or a constant edge
        return (0.0 if mean + margin > 0 else 1.0), (1.0 if mean >= 0 else 0.0)
    se = std / math.sqrt(n)
    return float(scipy_stats.t.sf((mean + margin) / se, n - 1)), float(scipy_stats.t.cdf(mean / se, n - 1))


@dataclass(frozen=True)
class TimeBlocks:
    """The per-pair PnL difference summed into time blocks of `block_us` microseconds, all symbols
    together: what a dependence-robust paired test needs, kept as pairs arrive in time order.

    Pairs are not independent: a prediction's label spans `horizon` candles, so the pairs of one
    symbol overlap in time, and the symbols move together. A t-test over pairs counts each as new
    evidence and, with 12-candle labels asked hourly on 8 correlated symbols, overstates the
    sample 3 to 8-fold (measured on the synthetic market); the shadow test then "proves" noise.
    Here the pairs of one block (2 x the label horizon) form one cluster, and the variance of the
    mean difference is the cluster-robust one with a Newey-West (Bartlett) term for neighbouring
    blocks, whose labels still overlap across the border:

        m = sum S_b / sum n_b,  e_b = S_b - m n_b,
        var(m) = B / (B - 1) * (sum e_b^2 + sum e_b e_(b-1)) / (sum n_b)^2,   t = m / sqrt(var), df = B - 1

    (S_b: the block's summed difference, n_b: its pairs, B: blocks). The sums below expand these
    so that they extend block by block; the block still open counts as a block when tested.
    """

    block_us: float
    blocks: int = 0  # closed blocks
    s: float = 0.0
    n: float = 0.0
    ss: float = 0.0
    sn: float = 0.0
    nn: float = 0.0
    lag_ss: float = 0.0  # sum S_b S_(b-1) over neighbouring blocks
    lag_sn: float = 0.0  # sum S_b n_(b-1) + n_b S_(b-1)
    lag_nn: float = 0.0  # sum n_b n_(b-1)
    last_id: int | None = None  # the last closed block
    last_s: float = 0.0
    last_n: float = 0.0
    open_id: int | None = None  # the block the latest pairs fell in, not closed yet
    open_s: float = 0.0
    open_n: float = 0.0

    def extended(self, difference: NDArray[np.float64], timestamp_us: NDArray[np.float64]) -> TimeBlocks:
        """These sums with the next pairs (time order) added."""
        if difference.size == 0:
            return self
        ids = np.floor(np.asarray(timestamp_us, dtype=np.float64) / self.block_us).astype(np.int64)
        if (np.diff(ids) < 0).any() or (self.open_id is not None and ids[0] < self.open_id):
            raise ValueError("shadow pairs must arrive in time order")
        starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
        sums = np.add.reduceat(difference, starts)
        counts = np.diff(np.append(starts, ids.size)).astype(np.float64)
        block_ids = ids[starts]
        if self.open_id is not None and block_ids[0] == self.open_id:
            sums[0] += self.open_s
            counts[0] += self.open_n
        elif self.open_id is not None:
            sums = np.concatenate(([self.open_s], sums))
            counts = np.concatenate(([self.open_n], counts))
            block_ids = np.concatenate(([self.open_id], block_ids))
        return self._closed(block_ids[:-1], sums[:-1], counts[:-1], int(block_ids[-1]), sums[-1], counts[-1])

    def _closed(self, ids: NDArray[np.int64], s: NDArray[np.float64], n: NDArray[np.float64],
                open_id: int | None, open_s: float, open_n: float) -> TimeBlocks:  # fmt: skip
        if ids.size == 0:
            return replace(self, open_id=open_id, open_s=float(open_s), open_n=float(open_n))
        prev_ids = np.concatenate(([self.last_id if self.last_id is not None else -(2**62)], ids[:-1]))
        prev_s = np.concatenate(([self.last_s], s[:-1]))
        prev_n = np.concatenate(([self.last_n], n[:-1]))
        near = ids - prev_ids == 1  # neighbouring blocks (a gap in the pairs breaks the overlap)
        return replace(
            self,
            blocks=self.blocks + int(ids.size),
            s=self.s + float(s.sum()),
            n=self.n + float(n.sum()),
            ss=self.ss + float((s * s).sum()),
            sn=self.sn + float((s * n).sum()),
            nn=self.nn + float((n * n).sum()),
            lag_ss=self.lag_ss + float((s * prev_s)[near].sum()),
            lag_sn=self.lag_sn + float((s * prev_n + n * prev_s)[near].sum()),
            lag_nn=self.lag_nn + float((n * prev_n)[near].sum()),
            last_id=int(ids[-1]),
            last_s=float(s[-1]),
            last_n=float(n[-1]),
            open_id=open_id,
            open_s=float(open_s),
            open_n=float(open_n),
        )

    def finished(self) -> TimeBlocks:
        """The sums with the open block closed (what a test on the pairs so far reads)."""
        if self.open_id is None:
            return self
        ids = np.array([self.open_id], dtype=np.int64)
        return self._closed(ids, np.array([self.open_s]), np.array([self.open_n]), None, 0.0, 0.0)

    def p_values(self, margin: float = 0.0) -> tuple[float, float, int]:
        """One-sided p-values (mean difference > 0, < 0) of the block-robust t-test, and the blocks.

        `margin` > 0: the first is the non-inferiority test's (mean difference > -margin). Shifting
        every pair by the margin leaves each block's residual e_b, so the variance is the same."""
        done = self.finished()
        b = done.blocks
        if b < 2 or done.n <= 0:
            return 1.0, 1.0, b
        m = done.s / done.n
        e2 = done.ss - 2 * m * done.sn + m * m * done.nn
        lag = done.lag_ss - m * done.lag_sn + m * m * done.lag_nn
        variance = max(e2 + lag, 0.0) * b / (b - 1) / (done.n * done.n)
        if variance <= 1e-300:  # the same difference in every block: as `t_pvalues` with no spread
            return (0.0 if m + margin > 0 else 1.0), (1.0 if m >= 0 else 0.0), b
        se = math.sqrt(variance)
        return float(scipy_stats.t.sf((m + margin) / se, b - 1)), float(scipy_stats.t.cdf(m / se, b - 1)), b


# A time block of the paired test spans this many label horizons: pairs whose labels overlap fall
# mostly in one block; the rest, across a border, are the Newey-West term's.
BLOCK_HORIZONS = 2


def paired_block_us(horizon: int, step_ms: int) -> float:
    """The paired test's time block (microseconds) for labels of `horizon` candles of `step_ms`."""
    return float(BLOCK_HORIZONS * horizon * step_ms * 1000)


def blocked_pvalues(
    difference: NDArray[np.float64], timestamp_us: ArrayLike | None, block_us: float, margin: float = 0.0
) -> tuple[float, float, int | None]:
    """One-sided p-values of the paired test on `difference` (time order): block-robust
    (`TimeBlocks`) when the pairs' timestamps and a block length are given, else the paired t-test
    over independent pairs (blocks None). `margin`: see `TimeBlocks.p_values`."""
    if timestamp_us is None or block_us <= 0:
        return (*paired_t_pvalues(difference, margin), None)
    stamps = np.asarray(timestamp_us, dtype=np.float64)
    return TimeBlocks(block_us).extended(difference, stamps).p_values(margin)


def evaluate_pairs(
    active_direction: ArrayLike,
    shadow_direction: ArrayLike,
    realized_return: ArrayLike,
    *,
    fee: float,
    thresholds: Thresholds,
    shadow_model_id: str = "",
    active_model_id: str | None = None,
    active_confidence: ArrayLike | None = None,
    shadow_confidence: ArrayLike | None = None,
    total_samples: int | None = None,
    timestamp_us: ArrayLike | None = None,
    block_us: float = 0.0,
) -> ShadowEvaluationResult:
    """Compare paired predictions in time order and recommend (see module doc).

    The arrays hold every closed pair, or (with `total_samples`, the count of every closed
    pair) at least the first `thresholds.decision_samples(total_samples)` of them. With the
    pairs' `timestamp_us` and a `block_us`, the paired test is block-robust (`TimeBlocks`)."""
    a_dir = np.asarray(active_direction, dtype=np.float64)
    s_dir = np.asarray(shadow_direction, dtype=np.float64)
    ret = np.asarray(realized_return, dtype=np.float64)
    if not (a_dir.shape == s_dir.shape == ret.shape) or a_dir.ndim != 1:
        raise ValueError(
            f"active_direction {a_dir.shape}, shadow_direction {s_dir.shape} and realized_return "
            f"{ret.shape} must be 1-d arrays of one length"
        )
    for name, values in (("active_direction", a_dir), ("shadow_direction", s_dir)):
        if values.size and not np.isin(values, (-1.0, 0.0, 1.0)).all():
            raise ValueError(f"{name} holds values other than -1, 0, 1")
    if not np.isfinite(ret).all():
        raise ValueError(f"realized_return holds {int((~np.isfinite(ret)).sum())} non-finite values")

    def _conf(values: ArrayLike | None) -> NDArray[Any] | None:
        return None if values is None else np.asarray(values, dtype=np.float64)

    total = ret.size if total_samples is None else total_samples
    m = thresholds.decision_samples(total)  # the latest look's pairs, in time order
    if not m <= ret.size <= total:
        raise ValueError(f"{ret.size} pairs given: the decision on {total} closed pairs needs the first {m}")
    a_conf, s_conf = _conf(active_confidence), _conf(shadow_confidence)
    active = model_metrics(a_dir[:m], ret[:m], fee, a_conf[:m] if a_conf is not None else None)
    shadow = model_metrics(s_dir[:m], ret[:m], fee, s_conf[:m] if s_conf is not None else None)
    difference = per_sample_pnl(s_dir[:m], ret[:m], fee) - per_sample_pnl(a_dir[:m], ret[:m], fee)
    stamps = None if timestamp_us is None else np.asarray(timestamp_us, dtype=np.float64)[:m]
    p_better, p_worse, blocks = blocked_pvalues(difference, stamps, block_us, thresholds.non_inferiority_margin)
    pnl_difference = float(difference.mean()) if difference.size else 0.0
    return decide(active, shadow, pnl_difference, (p_better, p_worse), total, thresholds, shadow_model_id,
                  active_model_id, blocks=blocks, block_us=block_us)  # fmt: skip


def decide(
    active: ModelMetrics,
    shadow: ModelMetrics,
    pnl_difference: float,
    p_values: tuple[float, float],
    total: int,
    thresholds: Thresholds,
    shadow_model_id: str,
    active_model_id: str | None,
    *,
    blocks: int | None = None,
    block_us: float = 0.0,
) -> ShadowEvaluationResult:
    """The recommendation on both models' metrics over the first `thresholds.decision_samples(total)`
    pairs, with the paired test's one-sided p-values (better, worse): block-robust over `blocks`
    time blocks, or (blocks None) a t-test over independent pairs."""
    p_better, p_worse = p_values
    looks = thresholds.looks()
    passed = [k for k, n in enumerate(looks) if n <= total]
    look = passed[-1] if passed else None
    m = thresholds.decision_samples(total)
    if shadow.samples != m or active.samples != m:
        raise ValueError(f"metrics of {active.samples} and {shadow.samples} pairs: the decision needs {m}")
    if active.hit_rate > 0:
        improvement = (shadow.hit_rate / active.hit_rate - 1.0) * 100.0
    else:
        improvement = math.inf if shadow.hit_rate > 0 else 0.0
    level = thresholds.level(look) if look is not None else None
    margin = thresholds.non_inferiority_margin
    concurrency = pair_concurrency(m, blocks)
    drawdowns = (book_drawdown_pct(active.max_drawdown_pct, concurrency),
                 book_drawdown_pct(shadow.max_drawdown_pct, concurrency))  # fmt: skip
    recommendation, reasons = _recommend(
        active, shadow, improvement, p_better, p_worse, thresholds, level, drawdowns, blocks
    )
    last_look = look == len(looks) - 1
    if recommendation == "CONTINUE_TESTING" and last_look:
        recommendation = "REJECT"
        reasons = [f"no promotion by the last look ({looks[-1]} pairs, the policy's max_samples)", *reasons]
    upcoming = [n for n in looks if n > total]
    return ShadowEvaluationResult(
        shadow_model_id=shadow_model_id,
        active_model_id=active_model_id,
        decision_samples=int(m),
        next_look_samples=upcoming[0] if upcoming and recommendation == "CONTINUE_TESTING" else None,
        significance_level=level,
        total_samples=int(total),
        active_metrics=active,
        shadow_metrics=shadow,
        improvement_pct=improvement,
        pnl_difference=pnl_difference,
        p_value_better=p_better,
        p_value_worse=p_worse,
        recommendation=recommendation,
        reasons=reasons,
        test_blocks=blocks,
        block_hours=block_us / 3.6e9 if blocks is not None else None,
        rule="non_inferiority" if margin > 0 else "superiority",
        non_inferiority_margin=margin,
        pair_concurrency=concurrency,
    )


def pair_concurrency(pairs: int, blocks: int | None) -> float:
    """About how many pairs are open at once: the pairs a time block holds over its `BLOCK_HORIZONS`
    label horizons (at least 1); 1 where the test takes pairs as independent (no blocks)."""
    if not blocks or pairs <= 0:
        return 1.0
    return max(1.0, pairs / blocks / BLOCK_HORIZONS)


def book_drawdown_pct(pairs_drawdown_pct: float, concurrency: float) -> float:
    """The drawdown of a book that holds each pair at 1/`concurrency`: the pairs' equity's log
    drawdown divided by the concurrency, back in percent."""
    if concurrency <= 1.0 or pairs_drawdown_pct <= 0.0:
        return pairs_drawdown_pct
    drop = -math.log1p(-min(pairs_drawdown_pct, 100.0 - 1e-12) / 100.0)
    return float(-math.expm1(-drop / concurrency) * 100.0)


def _drawdown_reason(drawdowns: tuple[float, float], limit: float) -> str | None:
    """The reason the shadow's book drawdown exceeds the active's by more than `limit` points, or None."""
    active, shadow = drawdowns
    if shadow - active <= limit:
        return None
    return (
        f"book max drawdown {shadow - active:.2f} points above the active's "
        f"({shadow:.2f}% vs {active:.2f}%, limit {limit})"
    )


def _recommend(
    active: ModelMetrics,
    shadow: ModelMetrics,
    improvement_pct: float,
    p_better: float,
    p_worse: float,
    limits: Thresholds,
    level: float | None,
    drawdowns: tuple[float, float],
    blocks: int | None = None,
) -> tuple[Recommendation, list[str]]:
    """The recommendation at a look. Superiority: a hit-rate gain and a PnL shown better. Non-inferiority
    (`limits.non_inferiority_margin` > 0; `p_better` is then that test's): a PnL shown above the active's
    minus the margin, no hit-rate gain asked. Under either rule a shadow shown worse than the active (no
    margin) is REJECTed, and the books' drawdowns (`drawdowns`: active, shadow) must be within the limit."""
    n = shadow.samples
    unit = f"{n} pairs" if blocks is None else f"{n} pairs in {blocks} time blocks"
    if level is None:
        return "CONTINUE_TESTING", [f"{n} resolved samples, {limits.min_samples} needed"]
    if p_worse < level:
        return "REJECT", [f"shadow PnL significantly worse than active (one-sided p={p_worse:.3g} < {level:.3g})"]
    margin_bp = limits.non_inferiority_margin * 1e4
    reasons: list[str] = []
    if margin_bp > 0:
        if p_better >= level:
            reasons.append(
                f"not shown within {margin_bp:.1f} bp a pair of the active at {unit} "
                f"(non-inferiority one-sided p={p_better:.3g}, needs < {level:.3g})"
            )
    else:
        if improvement_pct < limits.min_improvement_pct:
            reasons.append(f"hit-rate improvement {improvement_pct:.2f}% < {limits.min_improvement_pct}%")
        if shadow.avg_pnl <= active.avg_pnl or p_better >= level:
            reasons.append(
                f"PnL improvement not significant at {unit} (one-sided p={p_better:.3g}, needs < {level:.3g})"
            )
    drawdown = _drawdown_reason(drawdowns, limits.max_drawdown_pct)
    if drawdown:
        reasons.append(drawdown)
    if reasons:
        return "CONTINUE_TESTING", reasons
    books = f"book drawdown {drawdowns[1]:.2f}% vs {drawdowns[0]:.2f}%"
    if margin_bp > 0:
        difference_bp = (shadow.avg_pnl - active.avg_pnl) * 1e4
        return "PROMOTE", [
            f"non-inferior after a regime change: PnL {difference_bp:+.1f} bp a pair against the active, shown "
            f"above -{margin_bp:.1f} bp with one-sided p={p_better:.3g} at {unit}, {books}"
        ]
    return "PROMOTE", [
        f"hit rate +{improvement_pct:.2f}%, PnL better with one-sided p={p_better:.3g} at {unit}, {books}"
    ]
