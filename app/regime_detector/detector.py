"""Market regime detection with hysteresis, and the service that publishes `regime.changed`.

Measures per bar (the same definitions as the `regime` label of the data pipeline):
- efficiency ratio: |log close[t] - log close[t - w]| / sum of |log returns| over the w bars
  (Kaufman; 1 = a straight line, 0 = no net move), w = `window`;
- volatility ratio: std of log returns over w bars / std over `LONG_WINDOW_FACTOR` * w bars.

Raw class, first match: VOLATILE when the volatility ratio > `volatile_ratio`; TRENDING when
the efficiency ratio >= `trending_efficiency`; CHOPPY when the volatility ratio > 1 (busier
than usual, going nowhere); RANGING otherwise.

Hysteresis, against flapping on noisy input: (1) every threshold is moved by `margin`
(relative) against a switch: entering a class needs threshold * (1 + margin), staying in it
only threshold * (1 - margin); (2) a new class must be the raw class for `persist_bars`
consecutive bars before the regime switches.

`RegimeService` keeps each symbol's detector state in `system_flags` (`regime:<symbol>`)
and publishes `regime.changed` {symbol, old, new, at, efficiency_ratio, volatility_ratio}
in the same transaction that stores the new regime.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app.core.system import get_flag, set_flag
from app.core.topics import RegimeChanged

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.core.container import Container

LONG_WINDOW_FACTOR = 4


class Regime(StrEnum):
    TRENDING = "TRENDING"
    RANGING = "RANGING"
    CHOPPY = "CHOPPY"
    VOLATILE = "VOLATILE"


@dataclass(frozen=True)
class RegimeThresholds:
    window: int = 48
    volatile_ratio: float = 1.5
    trending_efficiency: float = 0.25
    choppy_ratio: float = 1.0
    margin: float = 0.1
    persist_bars: int = 6


def market_measures(close: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(efficiency ratio, volatility ratio) per bar; NaN until the long window is full."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = np.log(np.asarray(close, dtype=np.float64))
    if not np.all(np.isfinite(log_close)):
        raise ValueError("market_measures: close prices must be positive and finite")
    steps = pd.Series(np.diff(log_close, prepend=np.nan))
    path = steps.abs().rolling(window).sum().to_numpy()
    net = np.full(len(log_close), np.nan)
    net[window:] = np.abs(log_close[window:] - log_close[:-window])
    vol = steps.rolling(window).std(ddof=0).to_numpy()
    long_vol = steps.rolling(LONG_WINDOW_FACTOR * window).std(ddof=0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        efficiency = np.where(path > 0, net / path, 0.0)
        ratio = np.where(long_vol > 0, vol / long_vol, 1.0)
    unknown = np.isnan(long_vol)
    efficiency[unknown], ratio[unknown] = np.nan, np.nan
    return efficiency, ratio


def raw_regime(efficiency: float, vol_ratio: float, t: RegimeThresholds, current: Regime | None) -> Regime:
    """The class of one bar, with thresholds moved by the margin against leaving `current`."""

    def beyond(value: float, threshold: float, regime: Regime) -> bool:
        factor = 1 - t.margin if current is regime else 1 + t.margin
        return value > threshold * factor

    if beyond(vol_ratio, t.volatile_ratio, Regime.VOLATILE):
        return Regime.VOLATILE
    if beyond(efficiency, t.trending_efficiency, Regime.TRENDING):
        return Regime.TRENDING
    if beyond(vol_ratio, t.choppy_ratio, Regime.CHOPPY):
        return Regime.CHOPPY
    return Regime.RANGING


@dataclass
class DetectorState:
    current: Regime | None = None
    candidate: Regime | None = None
    candidate_bars: int = 0
    last_timestamp: int | None = None  # ms of the last bar fed (service bookkeeping)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "current": self.current and self.current.value,
            "candidate": self.candidate and self.candidate.value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorState:
        return cls(
            current=Regime(data["current"]) if data.get("current") else None,
            candidate=Regime(data["candidate"]) if data.get("candidate") else None,
            candidate_bars=int(data.get("candidate_bars", 0)),
            last_timestamp=data.get("last_timestamp"),
        )


@dataclass
class RegimeDetector:
    thresholds: RegimeThresholds = field(default_factory=RegimeThresholds)
    state: DetectorState = field(default_factory=DetectorState)

    def update(self, efficiency: float, vol_ratio: float) -> tuple[Regime | None, Regime] | None:
        """Feed one bar; returns (old, new) when the regime switches (old None: the first one)."""
        if not (np.isfinite(efficiency) and np.isfinite(vol_ratio)):
            return None  # warm-up bars say nothing
        state = self.state
        raw = raw_regime(efficiency, vol_ratio, self.thresholds, state.current)
        if state.current is None:
            state.current = raw
            return None, raw
        if raw is state.current:
            state.candidate, state.candidate_bars = None, 0
            return None
        if raw is state.candidate:
            state.candidate_bars += 1
        else:
            state.candidate, state.candidate_bars = raw, 1
        if state.candidate_bars < self.thresholds.persist_bars:
            return None
        old, state.current = state.current, raw
        state.candidate, state.candidate_bars = None, 0
        return old, raw


def detect_regimes(close: np.ndarray, thresholds: RegimeThresholds | None = None) -> list[Regime | None]:
    """The detected regime after each bar (None during warm-up)."""
    detector = RegimeDetector(thresholds or RegimeThresholds())
    efficiency, ratio = market_measures(close, detector.thresholds.window)
    out: list[Regime | None] = []
    for e, r in zip(efficiency, ratio, strict=True):
        detector.update(float(e), float(r))
        out.append(detector.state.current)
    return out


@dataclass(frozen=True)
class RegimeChange:
    symbol: str
    old: Regime | None
    new: Regime
    at: int  # bar timestamp, ms UTC


def flag_name(symbol: str) -> str:
    return f"regime:{symbol}"


class RegimeService:
    """Feeds a symbol's new candles to its detector; stores the regime and publishes changes."""

    def __init__(self, container: Container, thresholds: RegimeThresholds | None = None) -> None:
        self.container = container
        self.thresholds = thresholds or RegimeThresholds()
        self._stored: dict[str, DetectorState] = {}  # what this service's `update` committed, per symbol

    def current(self, symbol: str) -> Regime | None:
        if symbol in self._stored:  # just committed by `update`: no need to read it back
            return self._stored[symbol].current
        with self.container.session_factory() as session:
            flag = get_flag(session, flag_name(symbol))
            return DetectorState.from_dict(flag.value).current if flag is not None else None

    def update(self, symbol: str, candles: pd.DataFrame) -> list[RegimeChange]:
        """`candles`: columns `timestamp` (ms) and `close`, with enough history for the long window."""
        with self.container.session() as session:
            flag = get_flag(session, flag_name(symbol))
            state = DetectorState.from_dict(flag.value) if flag is not None else DetectorState()
            changes = self.feed(session, symbol, candles, state)
        self._stored[symbol] = state
        return changes

    def feed(self, session: Session, symbol: str, candles: pd.DataFrame, state: DetectorState) -> list[RegimeChange]:
        """`update` inside the caller's transaction, from the `state` it read: the bars after
        `state.last_timestamp` go through the detector (`state` moves on), the new state is stored
        and each switch published in `session`; the caller commits (several symbols at once)."""
        for column in ("timestamp", "close"):
            if column not in candles.columns:
                raise ValueError(f"RegimeService.update({symbol}): candles lack the column {column!r}")
        timestamps = candles["timestamp"].to_numpy(dtype=np.int64)
        if not (np.diff(timestamps) > 0).all():  # the store's reads are in order already: no copy then
            candles = candles.sort_values("timestamp")
            timestamps = candles["timestamp"].to_numpy(dtype=np.int64)
        efficiency, ratio = market_measures(candles["close"].to_numpy(), self.thresholds.window)
        changes: list[RegimeChange] = []
        detector = RegimeDetector(self.thresholds, state)
        # The bars already seen lead (in time order): skip them at once rather than one by one.
        first = 0 if state.last_timestamp is None else int(np.searchsorted(timestamps, state.last_timestamp, "right"))
        bars = zip(timestamps[first:], efficiency[first:], ratio[first:], strict=True)
        for ts, e, r in bars:
            if state.last_timestamp is not None and ts <= state.last_timestamp:
                continue  # already seen: a repeated call changes nothing
            switched = detector.update(float(e), float(r))
            state.last_timestamp = int(ts)
            if switched is None:
                continue
            change = RegimeChange(symbol, switched[0], switched[1], int(ts))
            changes.append(change)
            if change.old is not None:  # the first classification is stored, not announced
                event = RegimeChanged(
                    symbol=symbol,
                    old=change.old.value,
                    new=change.new.value,
                    at=change.at,
                    efficiency_ratio=float(e),
                    volatility_ratio=float(r),
                )
                self.container.bus.publish(session, event)
        set_flag(session, flag_name(symbol), True, state.to_dict())
        return changes
