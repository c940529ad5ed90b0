"""Candles of a longer timeframe from those of a shorter one (e.g. 15m from 5m files).

A target candle opens on the target's grid (`timeframes.floor_to_grid`) and aggregates the
source candles that open inside it: open of the first, high the max, low the min, close of
the last, volume the sum. A bucket with a source candle missing (an exchange outage) is
dropped, never filled or built from the candles it has: its high, low and volume would be
wrong, and the gap stays a gap at the target timeframe. `ResampleReport` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.data_pipeline.timeframes import grid_offset_ms, on_grid, timeframe_ms


@dataclass(frozen=True)
class ResampleReport:
    source_candles: int
    candles: int  # complete buckets kept
    incomplete_buckets: int  # buckets with a source candle missing: dropped


def resample_candles(candles: pd.DataFrame, source: str, target: str) -> tuple[pd.DataFrame, ResampleReport]:
    """`candles` (timestamp ms, open, high, low, close, volume; sorted, unique, on the `source` grid)
    as `target` candles; only complete buckets are kept."""
    step, target_step = timeframe_ms(source), timeframe_ms(target)
    if target_step % step or target_step < step:
        raise ValueError(f"resample: {target} is not a whole multiple of {source}")
    if grid_offset_ms(target) % step:
        raise ValueError(f"resample: {target}'s grid does not fall on {source}'s")
    stamps = candles["timestamp"].to_numpy(dtype=np.int64)
    if len(stamps) and not all(on_grid(int(t), source) for t in stamps[[0, -1]]):
        raise ValueError(f"resample: the candles are not on the {source} grid")
    if len(stamps) > 1 and (np.diff(stamps) <= 0).any():
        raise ValueError("resample: timestamps must be strictly increasing")
    per_bucket = target_step // step
    offset = grid_offset_ms(target)
    bucket = (stamps - offset) // target_step * target_step + offset
    frame = candles.assign(_bucket=bucket)
    grouped = frame.groupby("_bucket", sort=True)
    out = pd.DataFrame(
        {
            "timestamp": grouped["timestamp"].first().index.to_numpy(dtype=np.int64),
            "open": grouped["open"].first().to_numpy(),
            "high": grouped["high"].max().to_numpy(),
            "low": grouped["low"].min().to_numpy(),
            "close": grouped["close"].last().to_numpy(),
            "volume": grouped["volume"].sum().to_numpy(),
        }
    )
    complete = grouped.size().to_numpy() == per_bucket
    kept = out.loc[complete].reset_index(drop=True)
    return kept, ResampleReport(len(candles), len(kept), int((~complete).sum()))
