"""Regime detection on the candle store: what the beat task runs once per candle.

For each of the policy's symbols and for the market index (`MARKET`: the equal-weight index
of those symbols, a geometric mean of their normalised closes, which the RL agents' state
uses), the closed candles not yet fed go through `RegimeService`, which keeps the detector's
state and publishes `regime.changed`; the CLM reacts as the policy says.

The thresholds follow the timeframe: a 2-day measuring window, and a new class must hold for
12 hours before the regime switches, whatever the candle length.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from app.core.clock import utcnow
from app.core.db.models import SystemFlag
from app.data_pipeline import CandleStore, timeframe_ms
from app.regime_detector.detector import (
    LONG_WINDOW_FACTOR,
    DetectorState,
    RegimeChange,
    RegimeService,
    RegimeThresholds,
    flag_name,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.core.container import Container

MARKET = "MARKET"
REGIME_WINDOW, REGIME_PERSIST = timedelta(days=2), timedelta(hours=12)
_EPOCH = datetime(1970, 1, 1)  # naive UTC, as app.core.clock


def thresholds_for(timeframe: str) -> RegimeThresholds:
    step = timedelta(milliseconds=timeframe_ms(timeframe))
    return RegimeThresholds(window=max(5, int(REGIME_WINDOW / step)), persist_bars=max(1, int(REGIME_PERSIST / step)))


def market_index(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The equal-weight index (timestamp, close) over the open times every symbol has."""
    if not frames or any(not len(f) for f in frames.values()):
        return pd.DataFrame({"timestamp": [], "close": []})
    stamps = [f["timestamp"].to_numpy(dtype=np.int64) for f in frames.values()]
    common = functools.reduce(np.intersect1d, stamps)  # sorted, as the index of an inner join
    columns = []
    for frame, own in zip(frames.values(), stamps, strict=True):
        order = np.argsort(own, kind="stable")
        columns.append(frame["close"].to_numpy(dtype=np.float64)[order[np.searchsorted(own, common, sorter=order)]])
    if not len(common):
        return pd.DataFrame({"timestamp": common, "close": np.empty(0)})
    # Column-major, as the values of the joined frame this replaced: the mean adds in the same order.
    joined = np.asfortranarray(np.column_stack(columns))
    logs = np.log(joined / joined[0])
    return pd.DataFrame({"timestamp": common, "close": np.exp(logs.mean(axis=1))})


def detect_regimes(container: Container) -> dict[str, Any]:
    """Feed every series' new closed candles to its detector; returns each series' regime and changes.

    One transaction for all the series: their states read in one query, their candles read, the new
    states stored and the switches published together. Only the market index's switch has a reaction
    (app.clm.manager resets the RL agents), and it is the last series, as when each had its own."""
    policy = container.policy_store.get()
    exchange, timeframe = policy.data.exchange, policy.data.timeframe
    thresholds = thresholds_for(timeframe)
    service = RegimeService(container, thresholds)
    step = timeframe_ms(timeframe)
    now_ms = int((utcnow() - _EPOCH).total_seconds() * 1000)
    closed_before = now_ms - step + 1  # open_time < this: the candle has closed
    long_window = LONG_WINDOW_FACTOR * thresholds.window
    store = CandleStore(container)
    frames: dict[str, pd.DataFrame] = {}
    result: dict[str, Any] = {}
    everything = [*policy.data.symbols, MARKET]
    with container.session() as session:
        states, _rows = _states(session, everything)
        for series in everything:
            state = states[series]
            last = state.last_timestamp if state is not None else None
            # The long window before the first new bar; with no state yet, only the latest closed bar is
            # new (history is classified once, silently, never replayed as a string of old changes).
            start = (last if last is not None else now_ms - 2 * step) - long_window * step
            if series == MARKET:
                candles = market_index({s: _from(f, start) for s, f in frames.items()})
            else:
                candles = store.read_closes(exchange, series, timeframe, start, closed_before, session)
                frames[series] = candles
            changes: list[RegimeChange] = []
            if len(candles) > long_window:
                state = state or DetectorState()
                changes = service.feed(session, series, candles, state)
            current = state.current if state is not None else None
            result[series] = {
                "regime": current.value if current is not None else None,
                "changes": [{"old": c.old and c.old.value, "new": c.new.value, "at": c.at} for c in changes],
            }
    return result


def _from(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    """The rows of a frame in time order from open time `start` on (a slice, not a masked copy)."""
    return frame.iloc[int(np.searchsorted(frame["timestamp"].to_numpy(), start, side="left")) :]


def _states(session: Session, series: list[str]) -> tuple[dict[str, DetectorState | None], list[SystemFlag]]:
    """Each series' stored detector state (None: never fed), in one query; and the flag rows, which the
    caller keeps until it stores the new states (the session holds rows weakly: else each is read again)."""
    names = {flag_name(name): name for name in series}
    flags = list(session.scalars(select(SystemFlag).where(SystemFlag.name.in_(list(names)))).all())
    stored = {names[flag.name]: DetectorState.from_dict(flag.value) for flag in flags}
    return {name: stored.get(name) for name in series}, flags
