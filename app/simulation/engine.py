"""The simulated trading engine: candles replayed as live through the whole system.

Each step (one candle of every symbol): the candle goes into the candle store, the
simulated clock moves to its close, open trades are checked against its high/low, the
simulated beat runs what has come due (drift checks, weekly retraining, hourly health and
shadow evaluation, RL maintenance) through the dispatcher, the regime detector reads the
market index, and every symbol without an open position gets predictions from each model
type's ACTIVE model (the SHADOW one recorded beside it), an ensemble decision, a strategy
from the meta agent and a clamped size from the sizing agent, and maybe a trade.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from app.core.clock import SimulatedClock
from app.core.system import get_flag
from app.core.topics import TradeClosed
from app.data_pipeline import CandleStore
from app.forecasters import forecaster_class
from app.prediction import NoActiveModelError, PredictionService
from app.regime_detector.detector import RegimeService, RegimeThresholds
from app.rl.meta_space import MetaStrategyState, performance_level
from app.rl.meta_strategy import RLMetaStrategy
from app.rl.position_sizing import RLPositionSizing
from app.rl.sizing_space import SizingState
from app.simulation import trading
from app.simulation.config import RunConfig
from app.simulation.jobs import JobRunner
from app.simulation.market import MarketFeed, from_ms

if TYPE_CHECKING:
    from app.core.container import Container

MARKET = "MARKET"  # the regime is detected on the equal-weight index of all symbols
# A market regime: a 2-day window, and a new class must hold for 12 hours (any timeframe).
REGIME_WINDOW, REGIME_PERSIST = timedelta(days=2), timedelta(hours=12)


@dataclass
class EngineStats:
    steps: int = 0
    predictions: Counter[str] = field(default_factory=Counter)
    prediction_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    trades_opened: int = 0
    trades_closed: int = 0
    exits: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    clamped: int = 0
    balance_curve: list[tuple[int, float]] = field(default_factory=list)  # (ms, balance)
    closed: list[dict[str, Any]] = field(default_factory=list)  # small per-trade records


class TradingEngine:
    def __init__(
        self,
        container: Container,
        config: RunConfig,
        feed: MarketFeed,
        clock: SimulatedClock,
        runner: JobRunner,
        progress: Callable[[TradingEngine, int], None] | None = None,
    ) -> None:
        self.container = container
        self.config = config
        self.feed = feed
        self.clock = clock
        self.runner = runner
        self.progress = progress
        self.stats = EngineStats()
        self.balance = config.balance_usd
        self.open: dict[str, trading.Trade] = {}
        self.recent_wins: deque[bool] = deque(maxlen=20)
        # Seeded: the agents' exploration is part of the run's determinism.
        self.meta = RLMetaStrategy(container, rng=random.Random(config.seed * 1_000 + 1))
        self.sizing = RLPositionSizing(container, rng=random.Random(config.seed * 1_000 + 2))
        self.regime_thresholds = RegimeThresholds(
            window=max(5, int(REGIME_WINDOW / feed.step)), persist_bars=max(1, int(REGIME_PERSIST / feed.step))
        )
        self.regimes = RegimeService(container, self.regime_thresholds)
        policy = container.policy_store.get()
        self.exchange, self.timeframe = policy.data.exchange, policy.data.timeframe
        self.horizon, self.fee_pct = policy.labels.horizon, policy.labels.fee_pct
        self.model_types = list(policy.training.model_types)
        self.week = int(timedelta(days=7) / feed.step)
        self.drift_from = feed.replay_index + int(timedelta(days=config.drift_checks_after_days) / feed.step)

    # ----------------------------------------------------------------- loop

    def run(self) -> EngineStats:
        store = CandleStore(self.container)
        for offset in range(self.feed.steps):
            index = self.feed.replay_index + offset
            for symbol, row in self.feed.row(index).items():
                store.write(self.exchange, symbol, self.timeframe, row, on_conflict="replace")
            close_ms = int(self.feed.timestamps[index]) + int(self.feed.step / timedelta(milliseconds=1))
            self.clock.set(from_ms(close_ms))
            self._close_trades(index)
            if index == self.drift_from:
                self.runner.enable_drift_checks()
            self.runner.tick(self.clock.now())
            self._detect_regime(index)
            if offset % self.config.decision_every == 0 and not self.halted():
                for symbol in self.feed.symbols:
                    if symbol not in self.open:
                        self._decide(symbol, index, offset)
            # Events of this step (trades, predictions) are delivered asynchronously, as in
            # production; the beat's jobs and the work they start are waited for (JobRunner).
            self.stats.steps += 1
            self.stats.balance_curve.append((close_ms, self.balance))
            if self.progress is not None:
                self.progress(self, offset)
        self.runner.wait_idle()
        return self.stats

    def halted(self) -> bool:
        with self.container.session_factory() as session:
            flag = get_flag(session, "trading_halted")
            return bool(flag and flag.enabled)

    def _detect_regime(self, index: int) -> None:
        rows = 4 * self.regime_thresholds.window + 2  # the detector's long window, and one new bar
        self.regimes.update(MARKET, self.feed.market_index(index + 1, rows))

    def regime(self) -> str:
        current = self.regimes.current(MARKET)
        return current.value if current is not None else "RANGING"

    # ----------------------------------------------------------------- decisions

    def _predict(self, symbol: str, offset: int) -> dict[str, Any]:
        out = {}
        for model_type in self.model_types:
            decision = offset // self.config.decision_every
            if forecaster_class(model_type).NEEDS_GPU and decision % self.config.neural_every:
                continue
            started = time.perf_counter()
            try:
                out[model_type] = PredictionService(self.container, model_type).predict(symbol)
            except NoActiveModelError:
                continue
            self.stats.predictions[model_type] += 1
            self.stats.prediction_seconds[model_type] += time.perf_counter() - started
        return out

    def _decide(self, symbol: str, index: int, offset: int) -> None:
        predictions = self._predict(symbol, offset)
        signal = trading.ensemble({m: p.__dict__ for m, p in predictions.items()})
        if signal.direction == 0:
            self.stats.skipped["no signal"] += 1
            return
        candles = self.feed.candles[symbol].iloc[max(0, index + 1 - self.week) : index + 1]
        view = trading.market_view(candles, self.horizon, self.week)
        regime = self.regime()
        meta_state = MetaStrategyState(
            regime,
            trading.volatility_level(view.atr_pct),
            trading.liquidity_level(view.volume_ratio),
            performance_level(self._pnl_last_week_pct()),
        )
        strategy = self.meta.select_strategy(meta_state).value
        if not trading.strategy_allows(strategy, signal, view):
            self.stats.skipped[f"strategy {strategy}"] += 1
            return
        exposure = sum(t.size_usd for t in self.open.values()) / max(self.balance, 1.0)
        winrate = self._winrate()
        sizing_state = SizingState(regime, min(1.0, signal.confidence), exposure, winrate, view.atr_pct)
        decision = self.sizing.get_sizing_decision(
            sizing_state, balance_usd=self.balance, open_positions=len(self.open)
        )
        self.stats.clamped += int(decision.clamped)
        if not decision.allowed:
            self.stats.skipped["sizing refused"] += 1
            return
        side = signal.direction
        take, stop = trading.levels(
            side, view.close, view.atr_pct, self.horizon, decision.tp_strategy, decision.sl_strategy, strategy
        )
        opened_at = self.clock.now()
        self.stats.trades_opened += 1
        self.open[symbol] = trading.Trade(
            trade_id=f"SIM-{self.config.seed}-{self.stats.trades_opened:05d}",
            symbol=symbol,
            side=side,
            entry_price=view.close,
            opened_at=opened_at,
            opened_index=index,
            tp_price=take,
            sl_price=stop,
            size_usd=decision.size_usd,
            leverage=decision.leverage,
            strategy=strategy,
            meta_state=meta_state.to_dict(),
            sizing_state=sizing_state.to_dict(),
            sizing_action=decision.action_key,
            prediction_ids=[p.prediction_id for p in predictions.values()],
            shadow_test_ids=[p.shadow_test_id for p in predictions.values() if p.shadow_test_id is not None],
        )

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
            closed_at = self.clock.now()
            payload = trading.closed_payload(trade, exit_, closed_at, pnl_pct, self._winrate(), (None, None))
            with self.container.session() as session:
                self.container.bus.publish(session, TradeClosed(**payload))
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
