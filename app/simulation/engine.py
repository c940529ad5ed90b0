"""The simulated trading engine: an external engine that talks to the system only through the client.

Each step (one candle of every symbol): the world (`app/simulation/world.py`) puts the candle
in the candle store and moves the simulated clock to its close; the engine checks its open
trades against the candle's high/low and reports each closed one (`POST /api/outcomes`,
naming the decisions that opened it); the world's simulated beat runs what has come due
(drift checks, weekly retraining, health and shadow evaluation, RL maintenance, regime
detection on the candle store); then every symbol without an open position gets a prediction
from each model type (`POST /api/predictions`: the ACTIVE model answers, the SHADOW one is
recorded beside it), an ensemble decision, a strategy from the meta agent and a clamped size
from the sizing agent (`POST /api/rl/.../decision`), and maybe a trade. The market regime in
the agents' states is the one the beat detected (`GET /api/clm/status`).

Nothing here imports the system's services: `tests/unit/test_import_graph.py` checks it.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from quantum_trader_client import (
    CLMClient,
    ClmStatus,
    Conflict,
    MetaStrategyState,
    Prediction,
    SizingState,
    TradeOutcome,
)

from app.simulation import trading

if TYPE_CHECKING:
    from app.simulation.config import RunConfig
    from app.simulation.market import MarketFeed

MARKET_INDEX = "MARKET"  # the equal-weight index's name in the status's regimes: the agents' market regime


class World(Protocol):
    """What happens around the engine at each candle (`app.simulation.world.SimulatedWorld`)."""

    def candle_closes(self, index: int) -> datetime: ...

    def beat(self, index: int) -> None: ...

    def settle(self) -> None: ...


@dataclass(frozen=True)
class EngineSetup:
    """What the engine is configured with, as an external engine would be (from the run's policy)."""

    horizon: int  # candles a trade may last (the label horizon)
    fee_pct: float  # per side
    model_types: tuple[str, ...]  # asked for predictions, in this order
    slow_model_types: frozenset[str] = frozenset()  # asked only at every `neural_every`-th decision


@dataclass
class EngineStats:
    steps: int = 0
    predictions: Counter[str] = field(default_factory=Counter)
    prediction_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # API round trips
    trades_opened: int = 0
    trades_closed: int = 0
    exits: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    clamped: int = 0
    halted_refusals: int = 0  # sizing decisions refused because trading was halted
    halted_predictions: int = 0  # prediction answers that said trading was halted
    status_reads: int = 0
    balance_curve: list[tuple[int, float]] = field(default_factory=list)  # (ms, balance)
    closed: list[dict[str, Any]] = field(default_factory=list)  # small per-trade records


class TradingEngine:
    def __init__(
        self,
        config: RunConfig,
        setup: EngineSetup,
        feed: MarketFeed,
        world: World,
        api: CLMClient,
        progress: Callable[[TradingEngine, int], None] | None = None,
    ) -> None:
        self.config = config
        self.setup = setup
        self.feed = feed
        self.world = world
        self.api = api  # the only way into the system
        self.progress = progress
        self.stats = EngineStats()
        self.balance = config.balance_usd
        self.open: dict[str, trading.Trade] = {}
        self.recent_wins: deque[bool] = deque(maxlen=20)
        self.decisions: dict[str, tuple[str, str]] = {}  # trade id -> (meta, sizing) decision ids
        self.now: datetime | None = None
        self._status: ClmStatus | None = None  # read at most once a step, when a decision needs it
        self.horizon, self.fee_pct = setup.horizon, setup.fee_pct
        self.week = int(timedelta(days=7) / feed.step)

    # ----------------------------------------------------------------- loop

    def run(self) -> EngineStats:
        for offset in range(self.feed.steps):
            index = self.feed.replay_index + offset
            self.now = self.world.candle_closes(index)
            self._status = None
            self._close_trades(index)
            self.world.beat(index)  # includes regime detection on the candle store
            # While trading is halted the engine still asks: the sizing decision refuses (size 0).
            if offset % self.config.decision_every == 0:
                for symbol in self.feed.symbols:
                    if symbol not in self.open:
                        self._decide(symbol, index, offset)
            # Events of this step (trades, predictions) are delivered asynchronously, as in
            # production; the beat's jobs and the work they start are waited for (the world's runner).
            self.stats.steps += 1
            close_ms = int(self.feed.timestamps[index]) + int(self.feed.step / timedelta(milliseconds=1))
            self.stats.balance_curve.append((close_ms, self.balance))
            if self.progress is not None:
                self.progress(self, offset)
        self.world.settle()
        return self.stats

    def status(self) -> ClmStatus:
        """The system's status as the API reports it, read once per step."""
        if self._status is None:
            self._status = self.api.status()
            self.stats.status_reads += 1
        return self._status

    def halted(self) -> bool:
        return bool(self.status().trading_halted.get("halted"))

    def regime(self) -> str:
        """The market index's regime, as the beat's regime detection left it (RANGING before its first run)."""
        current = self.status().regimes.get(MARKET_INDEX, {}).get("regime")
        return str(current) if current else "RANGING"

    def clock_now(self) -> datetime:
        assert self.now is not None, "the engine has not started"
        return self.now

    # ----------------------------------------------------------------- decisions

    def _predict(self, symbol: str, offset: int) -> dict[str, Prediction]:
        out = {}
        decision = offset // self.config.decision_every
        for model_type in self.setup.model_types:
            if model_type in self.setup.slow_model_types and decision % self.config.neural_every:
                continue
            started = time.perf_counter()
            try:
                prediction = self.api.predict(symbol, model_type)
            except Conflict:  # the type has no ACTIVE model: no vote
                continue
            self.stats.predictions[model_type] += 1
            self.stats.prediction_seconds[model_type] += time.perf_counter() - started
            self.stats.halted_predictions += int(prediction.trading_halted)
            if prediction.abstained:  # served, with its reason: an abstention is no vote
                continue
            out[model_type] = prediction
        return out

    def _decide(self, symbol: str, index: int, offset: int) -> None:
        predictions = self._predict(symbol, offset)
        signal = trading.ensemble({m: p.model_dump() for m, p in predictions.items()})
        if signal.direction == 0:
            self.stats.skipped["no signal"] += 1
            return
        candles = self.feed.candles[symbol].iloc[max(0, index + 1 - self.week) : index + 1]
        view = trading.market_view(candles, self.horizon, self.week)
        regime = self.regime()
        # The states as the API defines them (the client's models check them before the call).
        meta_state = MetaStrategyState.model_validate(
            {
                "market_regime": regime,
                "volatility_level": trading.volatility_level(view.atr_pct),
                "liquidity_level": trading.liquidity_level(view.volume_ratio),
                "recent_performance": trading.performance_level(self._pnl_last_week_pct()),
            }
        )
        meta = self.api.meta_decision(meta_state)
        strategy = meta.strategy
        if not trading.strategy_allows(strategy, signal, view):
            self.stats.skipped[f"strategy {strategy}"] += 1
            return
        exposure = sum(t.size_usd for t in self.open.values()) / max(self.balance, 1.0)
        sizing_state = SizingState.model_validate(
            {
                "market_regime": regime,
                "signal_confidence": min(1.0, signal.confidence),
                "portfolio_exposure": exposure,
                "recent_winrate": self._winrate(),
                "volatility": view.atr_pct,
            }
        )
        decision = self.api.sizing_decision(sizing_state, balance_usd=self.balance, open_positions=len(self.open))
        self.stats.clamped += int(decision.clamped and not decision.trading_halted)
        if not decision.allowed:
            self.stats.skipped["sizing refused: trading halted" if decision.trading_halted else "sizing refused"] += 1
            self.stats.halted_refusals += int(decision.trading_halted)
            return
        side = signal.direction
        take, stop = trading.levels(
            side, view.close, view.atr_pct, self.horizon, decision.tp_strategy, decision.sl_strategy, strategy
        )
        self.stats.trades_opened += 1
        self.open[symbol] = trading.Trade(
            trade_id=(trade_id := f"SIM-{self.config.seed}-{self.stats.trades_opened:05d}"),
            symbol=symbol,
            side=side,
            entry_price=view.close,
            opened_at=self.clock_now(),
            opened_index=index,
            tp_price=take,
            sl_price=stop,
            size_usd=decision.size_usd,
            leverage=decision.leverage,
            strategy=strategy,
            meta_state=meta_state.model_dump(),
            sizing_state=sizing_state.model_dump(),
            sizing_action=decision.action,
            prediction_ids=[p.prediction_id for p in predictions.values()],
            shadow_test_ids=[p.shadow_test_id for p in predictions.values() if p.shadow_test_id is not None],
        )
        self.decisions[trade_id] = (meta.decision_id, decision.decision_id)

    # ----------------------------------------------------------------- exits

    def _close_trades(self, index: int) -> None:
        for symbol in list(self.open):
            trade = self.open[symbol]
            candle = self.feed.candles[symbol].iloc[index]
            exit_ = trading.check_exit(
                trade, float(candle["high"]), float(candle["low"]), float(candle["close"]), index, self.horizon
            )
            if exit_ is None:
                continue
            del self.open[symbol]
            pnl_pct = trading.trade_pnl_pct(trade, exit_.price, self.fee_pct)
            pnl_usd = trade.size_usd * pnl_pct / 100.0
            self.balance += pnl_usd
            self.recent_wins.append(pnl_pct > 0)
            closed_at = self.clock_now()
            payload = trading.closed_payload(trade, exit_, closed_at, pnl_pct, self._winrate(), (None, None))
            # The agents learn what they decided: the decision ids stand for the states and actions.
            meta_id, sizing_id = self.decisions.pop(trade.trade_id)
            decided = {"meta_state", "meta_action", "sizing_state", "sizing_action"}
            outcome = {k: v for k, v in payload.items() if k not in decided and v is not None}
            self.api.report_trade(TradeOutcome(**outcome, meta_decision_id=meta_id, sizing_decision_id=sizing_id))
            self.stats.trades_closed += 1
            self.stats.exits[exit_.reason] += 1
            self.stats.closed.append(
                {"trade_id": trade.trade_id, "closed_ms": int(self.feed.timestamps[index]), "pnl_usd": pnl_usd}
            )

    def _winrate(self) -> float:
        return sum(self.recent_wins) / len(self.recent_wins) if self.recent_wins else 0.5

    def _pnl_last_week_pct(self) -> float:
        since = int(self.feed.timestamps[0]) if not self.stats.closed else None
        cutoff = self.stats.closed[-1]["closed_ms"] - 7 * 86_400_000 if since is None else since
        total = sum(t["pnl_usd"] for t in self.stats.closed if t["closed_ms"] >= cutoff)
        return 100.0 * total / self.config.balance_usd
