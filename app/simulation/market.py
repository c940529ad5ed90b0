"""The run's market feed: every symbol's candles over history + replay, from the chosen source.

The feed holds the whole series in memory; the engine hands the store the history at the
start and then one candle per step, so the store never holds a candle from the future.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app.data_pipeline import fetch_historical_data, read_candle_file, synthetic_market, timeframe_ms
from app.data_pipeline.resample import resample_candles
from app.data_pipeline.timeframes import to_ms
from app.simulation.config import RunConfig

if TYPE_CHECKING:
    from app.core.container import Container

EPOCH = datetime(1970, 1, 1)


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=int(ms))


@dataclass
class MarketFeed:
    candles: dict[str, pd.DataFrame]  # symbol -> candles, the same open times for every symbol
    timeframe: str
    replay_index: int  # row of the first replayed candle
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return list(self.candles)

    @property
    def step(self) -> timedelta:
        return timedelta(milliseconds=timeframe_ms(self.timeframe))

    @property
    def timestamps(self) -> np.ndarray:
        return next(iter(self.candles.values()))["timestamp"].to_numpy(dtype=np.int64)

    @property
    def steps(self) -> int:
        return len(self.timestamps) - self.replay_index

    def history(self) -> dict[str, pd.DataFrame]:
        return {s: c.iloc[: self.replay_index].reset_index(drop=True) for s, c in self.candles.items()}

    def row(self, index: int) -> dict[str, pd.DataFrame]:
        return {s: c.iloc[index : index + 1] for s, c in self.candles.items()}

    def market_index(self, end_index: int, rows: int) -> pd.DataFrame:
        """An equal-weight index of all symbols (geometric mean of normalised closes), for the regime."""
        start = max(0, end_index - rows)
        logs = [np.log(c["close"].to_numpy()[start:end_index] / c["close"].iloc[0]) for c in self.candles.values()]
        return pd.DataFrame({"timestamp": self.timestamps[start:end_index], "close": np.exp(np.mean(logs, axis=0))})


def load_market(config: RunConfig, container: Container | None = None) -> MarketFeed:
    """The feed for `config.source`: the synthetic market (with its shift), files, or a ccxt exchange."""
    step_ms = timeframe_ms(config.timeframe)
    history = round(config.history_days * 86_400_000 / step_ms)
    replay = round(config.replay_days * 86_400_000 / step_ms)
    if config.source == "synthetic":
        candles, info = synthetic_market(
            list(config.symbols), config.start, history + replay, config.timeframe, config.seed, config.shift_at
        )
        return MarketFeed(candles, config.timeframe, history, info)
    if config.source == "files":
        frames, info = _read_files(config), {"source": "files", "files": dict(config.files)}
    else:
        if container is None:
            raise ValueError("source 'exchange' needs a container (the fetch is cached in the candle store)")
        end = config.start + timedelta(days=config.history_days + config.replay_days)
        frames = fetch_historical_data(
            list(config.symbols), config.start, end, config.timeframe, container=container, exchange_id=config.exchange
        )
        info = {"source": "exchange", "exchange": config.exchange}
    return _aligned(frames, config, history, replay, info)


def _read_files(config: RunConfig) -> dict[str, pd.DataFrame]:
    """Each symbol's file, resampled to the run's timeframe when `config.file_timeframe` is shorter."""
    source = config.file_timeframe or config.timeframe
    frames = {s: read_candle_file(config.files[s], source)[0] for s in config.symbols}
    if source != config.timeframe:
        frames = {s: resample_candles(f, source, config.timeframe)[0] for s, f in frames.items()}
    return frames


def _aligned(
    frames: dict[str, pd.DataFrame], config: RunConfig, history: int, replay: int, info: dict[str, Any]
) -> MarketFeed:
    """The last history + replay open times every symbol has (real data has gaps and different starts); from
    `config.files_start` on, the first ones."""
    common: set[int] | None = None
    for frame in frames.values():
        stamps = set(frame["timestamp"].astype("int64"))
        common = stamps if common is None else common & stamps
    ordered = sorted(common or ())
    if config.source == "files" and config.files_start is not None:
        first = to_ms(config.files_start)
        ordered = [t for t in ordered if t >= first][: history + replay]
    if len(ordered) < history // 2 + 2:
        raise ValueError(
            f"source {config.source}: only {len(ordered)} common candles for {list(frames)}; "
            f"the run needs about {history + replay} ({config.history_days} + {config.replay_days} days)"
        )
    wanted = ordered[-(history + replay) :]
    if len(wanted) < history + replay:  # too few candles: a shorter replay, at least half of them history
        history = max(len(wanted) - replay, len(wanted) // 2)
    keep = set(wanted)
    candles = {
        s: f.loc[f["timestamp"].isin(keep)].sort_values("timestamp").reset_index(drop=True) for s, f in frames.items()
    }
    return MarketFeed(candles, config.timeframe, history, info)
