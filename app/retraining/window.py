"""The training window of a drift-triggered retraining: it starts where the market changed.

When drift starts a retraining (`clm_config.drift_window.method` "change_point"), the
candidate window is the policy's `data.lookback_days` ending at the job's end. The features
the drift check found drifted (a prediction or performance drift names none: then the latest
feature-drift check's, else the one-candle return and its volatility)
are computed from the stored candles over that window and searched for change points:

- each feature is standardised over the candidate window and averaged over the symbols;
- rows are averaged over blocks of `block_hours`: features built on rolling windows are
  autocorrelated, and a search on single rows finds a "change" in every swing;
- the best single split (binary segmentation, `ruptures`) under a Gaussian cost (a change of
  mean or covariance) of at most `max_features` features, kept only when the cost it saves
  exceeds a BIC penalty: `penalty_scale x (parameters of one more segment + 1) x log(blocks)`.
  Ruptures' normal cost is n log det(cov), twice the negative log-likelihood up to a constant,
  so this is BIC's trade. Not PELT's many splits at once: the block means of rolling features
  are still autocorrelated, and PELT under BIC cut the synthetic market's calm post-shift
  stretch at spurious points (tried: its last break missed the shift by up to two days);
- the latest change, not the strongest: after a kept split the part after it is searched
  again the same way (its own best split, its own penalty), until a part has none. The
  strongest split of a 12-day window is often an older change: on the synthetic market, an
  earlier volatile spell's start, 44 to 140 hours before the shift, in 3 of 10 seeds four days
  after it; and a window from there trains mostly on the old market. Searching on to the right
  found the shift within 20 hours in those seeds (measured with the drift checks' strongest
  features, `details["splits"]` lists every kept split).

The window starts at the change point; its candles are read from the features' and labels'
warm-up before it (`read_from`), so that the dataset's first row is the change point's.
A change point nearer the end than `min_window_days` (or `min_window_candles` candles,
whichever is longer) leaves too few rows: with `short_window` "extend" the window is moved
back to leave that much (old-market rows included), with "wait" no retraining starts
(`deferred`, `ready_at`): a later drift check, once the new market has that many days,
retrains on it alone. None found keeps the normal window. Every outcome is a
`TrainingWindow` with its method, the change point and the reason, stored in the job
(`metadata.training_window`, shown by `GET /api/jobs/<id>`); a deferral is published as
`clm.retraining.suppressed` with an empty `blocked_by` and the reason.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import ruptures
from sqlalchemy import select

from app.core.db.models import DriftEvent
from app.core.policy import Policy
from app.data_pipeline import CandleStore, engineer_features, timeframe_ms
from app.data_pipeline.features import warmup_rows
from app.data_pipeline.labels import label_warmup_rows
from app.data_pipeline.timeframes import to_ms
from app.retraining.spec import TrainingWindow

if TYPE_CHECKING:
    from app.core.container import Container

WARMUP_CANDLES = 300  # history before the candidate window for the longest indicator
FALLBACK_FEATURES = ("ret_1", "rvol_12")  # a drift that named no feature (prediction, performance)
MIN_BLOCKS = 8  # fewer blocks than this cannot place a change point
# Each side of the split holds at least this many blocks (and more than the features): a
# Gaussian cost fitted on two or three blocks is unstable and "finds" changes at the edges.
MIN_SEGMENT_BLOCKS = 6


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)


def drifted_features(container: Container, drift_event_ids: Sequence[int]) -> list[str]:
    """The features of a drift check's findings, the strongest (largest KS statistic) first."""
    if not drift_event_ids:
        return []
    with container.session_factory() as session:
        rows = session.execute(
            select(DriftEvent.feature_name, DriftEvent.metadata_).where(
                DriftEvent.id.in_([int(i) for i in drift_event_ids]), DriftEvent.drift_type == "feature"
            )
        ).all()
    strength = {str(name): float((meta or {}).get("ks_statistic") or 0.0) for name, meta in rows if name is not None}
    return sorted(strength, key=lambda name: (-strength[name], name))


def recent_drifted_features(container: Container, since: datetime) -> list[str]:
    """The features of the latest feature-drift check since `since`, the strongest first: a
    retraining started by prediction or performance drift searches what the features say."""
    with container.session_factory() as session:
        latest = session.scalar(
            select(DriftEvent.detected_at)
            .where(DriftEvent.drift_type == "feature", DriftEvent.detected_at >= since)
            .order_by(DriftEvent.detected_at.desc())
            .limit(1)
        )
        if latest is None:
            return []
        ids = session.scalars(
            select(DriftEvent.id).where(DriftEvent.drift_type == "feature", DriftEvent.detected_at == latest)
        ).all()
    return drifted_features(container, list(ids))


def find_change_point(signal: np.ndarray, penalty_scale: float = 1.0) -> tuple[int | None, dict[str, Any]]:
    """The change point (index into `signal`'s rows) of the best single split, when it pays its BIC penalty.

    `signal`: blocks x features, already standardised. Binary segmentation (ruptures) for one
    break under a Gaussian cost; the split is kept when the cost it saves exceeds the penalty.
    Returns the index (None: no change) and what was searched."""
    if signal.ndim == 1:
        signal = signal[:, None]
    n, d = signal.shape
    parameters = d + d * (d + 1) // 2 + 1  # one more segment's mean and covariance, and its position
    penalty = penalty_scale * parameters * math.log(max(n, 2))
    details: dict[str, Any] = {"blocks": n, "dimensions": d, "penalty": round(penalty, 3), "cost": "normal"}
    min_size = max(MIN_SEGMENT_BLOCKS, 2 * (d + 1))
    if n < max(MIN_BLOCKS, 2 * min_size):
        details["gain"] = None
        return None, details
    with warnings.catch_warnings():  # ruptures announces its small covariance bias (since 1.1.5) on every fit
        warnings.simplefilter("ignore", UserWarning)
        algo = ruptures.Binseg(model="normal", min_size=min_size, jump=1).fit(signal)
        index = int(algo.predict(n_bkps=1)[0])
        gain = float(algo.cost.error(0, n) - algo.cost.error(0, index) - algo.cost.error(index, n))
    details["gain"] = round(gain, 3)
    return (index if gain > penalty else None), details


def latest_change_point(signal: np.ndarray, penalty_scale: float = 1.0) -> tuple[int | None, dict[str, Any]]:
    """`find_change_point`, then again on the part after each kept split: the latest change (index into
    `signal`'s rows, None: no change). `details` are the first search's, with every kept split's block
    index and gain under `splits` and the last search's gain and penalty as `last_gain`, `last_penalty`."""
    index, details = find_change_point(signal, penalty_scale)
    splits: list[dict[str, Any]] = []
    latest, offset, last = index, 0, details
    while latest is not None and latest - offset != 0:
        splits.append({"block": latest, "gain": last["gain"], "penalty": last["penalty"]})
        offset = latest
        following, last = find_change_point(signal[offset:], penalty_scale)
        if following is None:
            break
        latest = offset + following
    details["splits"] = splits
    details["last_gain"], details["last_penalty"] = last["gain"], last["penalty"]
    return latest, details


def block_signal(frame: pd.DataFrame, features: Sequence[str], block_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardised features averaged over the symbols and over time blocks: (blocks x features, block starts ms)."""
    values = frame[["timestamp", *features]].copy()
    for name in features:
        column = values[name].astype("float64")
        spread = float(column.std()) or 1.0
        values[name] = (column - float(column.mean())) / spread
    values["block"] = (values["timestamp"] // block_ms) * block_ms
    blocks = values.groupby("block")[list(features)].mean().dropna()
    return blocks.to_numpy(dtype=np.float64), blocks.index.to_numpy(dtype=np.int64)


def candidate_features(policy: Policy, container: Container, start: datetime, end: datetime) -> pd.DataFrame:
    """Features of the policy's symbols over [start, end) from the stored candles (all symbols stacked)."""
    step = timeframe_ms(policy.data.timeframe)
    store = CandleStore(container)
    frames = []
    for symbol in policy.data.symbols:
        candles = store.read(
            policy.data.exchange, symbol, policy.data.timeframe, to_ms(start) - WARMUP_CANDLES * step, to_ms(end)
        )
        if len(candles) <= WARMUP_CANDLES // 2:
            continue
        features = engineer_features(candles, policy.features)
        frames.append(features.loc[features["timestamp"] >= to_ms(start)])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def choose_window(
    container: Container, policy: Policy, end: datetime, drift_event_ids: Sequence[int] = ()
) -> TrainingWindow:
    """The training window of a drift-triggered retraining ending at `end` (see the module's text)."""
    config = policy.clm_config.drift_window
    lookback = timedelta(days=policy.data.lookback_days)
    candidate_start = end - lookback
    if config.method == "fixed":
        return TrainingWindow(method="fixed", start=None, reason="the policy's drift_window.method is 'fixed'")
    features = candidate_features(policy, container, candidate_start, end)
    named = drifted_features(container, drift_event_ids)
    source = "the drifted features"
    if not named:
        named = recent_drifted_features(
            container, end - timedelta(days=policy.clm_config.drift_detection.lookback_days)
        )
        source = "the latest feature-drift check's features (the trigger named none)"
    usable = [f for f in named if f in features.columns][: config.max_features]
    chosen = usable or [f for f in FALLBACK_FEATURES if f in features.columns]
    source = source if usable else "the return and its volatility (no drifted feature named)"
    step = timeframe_ms(policy.data.timeframe)
    shortest = max(config.min_window_days, config.min_window_candles * step / 86_400_000)
    lead = timedelta(milliseconds=step * max(warmup_rows(policy.features), label_warmup_rows(policy.labels)))
    window = window_from_features(
        features,
        chosen,
        candidate_start,
        end,
        config.block_hours,
        shortest,
        config.penalty_scale,
        source,
        short_window=config.short_window,
    )
    if window.start is None or window.start <= candidate_start:
        return window
    return window.model_copy(update={"read_from": window.start - lead})


def window_from_features(
    features: pd.DataFrame,
    chosen: Sequence[str],
    candidate_start: datetime,
    end: datetime,
    block_hours: float,
    min_window_days: float,
    penalty_scale: float,
    source: str = "features",
    *,
    short_window: Literal["extend", "wait"] = "extend",
) -> TrainingWindow:
    """The change-point window over `features` (timestamp + columns, symbols stacked); pure, for tests.

    `short_window`: what a change point nearer the end than `min_window_days` does: "extend" the
    window back to that length, or "wait" (a deferred window: no retraining until `ready_at`)."""
    base: dict[str, Any] = {
        "method": "change_point",
        "features": list(chosen),
        "candidate_start": candidate_start,
        "end": end,
    }
    if features.empty or not chosen:
        return TrainingWindow(**base, start=None, reason="fallback to the normal window: no stored features to search")
    block_ms = max(1, int(block_hours * 3_600_000))
    signal, starts = block_signal(features, chosen, block_ms)
    index, details = latest_change_point(signal, penalty_scale)
    details["block_hours"] = block_hours
    details["searched"] = source
    if index is None:
        reason = (
            f"fallback to the normal window: no change point in {details['blocks']} blocks of {block_hours:g} h "
            f"of {', '.join(chosen)} (the best split saves {details['gain']}, "
            f"the BIC penalty is {details['penalty']:g})"
        )
        return TrainingWindow(**base, start=None, reason=reason, details=details)
    change_point = from_ms(int(starts[index]))
    # Never before the candidate window: a minimum longer than the lookback keeps the normal window.
    latest_start = max(candidate_start, end - timedelta(days=min_window_days))
    if change_point > latest_start and short_window == "wait" and latest_start > candidate_start:
        ready_at = change_point + timedelta(days=min_window_days)
        reason = (
            f"change point at {change_point:%Y-%m-%d %H:%M} in {', '.join(chosen)}: only "
            f"{(end - change_point).total_seconds() / 86_400:.2f} days of the new market so far; the retraining "
            f"waits until {ready_at:%Y-%m-%d %H:%M} ({min_window_days:g} days, clm_config.drift_window."
            "min_window_days / min_window_candles) rather than train mostly on the old market "
            "(clm_config.drift_window.short_window 'wait')"
        )
        return TrainingWindow(
            **base,
            start=None,
            change_point=change_point,
            deferred=True,
            ready_at=ready_at,
            reason=reason,
            details=details,
        )
    if change_point > latest_start:
        reason = (
            f"change point at {change_point:%Y-%m-%d %H:%M} in {', '.join(chosen)}; the window starts "
            f"at {latest_start:%Y-%m-%d %H:%M} instead, to keep at least {min_window_days:g} days of rows "
            "(clm_config.drift_window.min_window_days / min_window_candles)"
        )
        return TrainingWindow(
            **base, start=latest_start, change_point=change_point, clipped=True, reason=reason, details=details
        )
    split = details["splits"][-1]
    later = f" (the latest of {len(details['splits'])} changes)" if len(details["splits"]) > 1 else ""
    reason = (
        f"the window starts at the change point {change_point:%Y-%m-%d %H:%M}{later}: the best split of "
        f"{', '.join(chosen)} (Gaussian cost) saves {split['gain']}, over the BIC penalty {split['penalty']:g}"
    )
    return TrainingWindow(**base, start=change_point, change_point=change_point, reason=reason, details=details)
