"""Everything around the simulated trading engine that is not the engine: the exchange, time and beat.

Each step the world hands the candle store one closed candle per symbol (as the exchange
refresh would), moves the simulated clock to its close, and, once the engine has reported
the trades that candle closed, runs the beat's jobs that have come due (drift checks from
`drift_checks_after_days`, retraining, health, shadow evaluation, RL maintenance, regime
detection) through the dispatcher. The engine sees none of this: it talks to the API only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from app.core.clock import SimulatedClock
from app.data_pipeline import CandleStore
from app.simulation.config import RunConfig
from app.simulation.jobs import JobRunner
from app.simulation.market import MarketFeed, from_ms

if TYPE_CHECKING:
    from app.core.container import Container


class SimulatedWorld:
    def __init__(
        self, container: Container, config: RunConfig, feed: MarketFeed, clock: SimulatedClock, runner: JobRunner
    ) -> None:
        self.feed = feed
        self.clock = clock
        self.runner = runner
        self.store = CandleStore(container)
        policy = container.policy_store.get()
        self.exchange, self.timeframe = policy.data.exchange, policy.data.timeframe
        self.drift_from = feed.replay_index + int(timedelta(days=config.drift_checks_after_days) / feed.step)

    def candle_closes(self, index: int) -> datetime:
        """Row `index` of every symbol arrives in the candle store; the clock moves to its close."""
        for symbol, row in self.feed.row(index).items():
            self.store.write(self.exchange, symbol, self.timeframe, row, on_conflict="replace")
        close_ms = int(self.feed.timestamps[index]) + int(self.feed.step / timedelta(milliseconds=1))
        self.clock.set(from_ms(close_ms))
        return self.clock.now()

    def beat(self, index: int) -> None:
        """The simulated beat: the jobs due at this candle's close (regime detection included)."""
        if index == self.drift_from:
            self.runner.enable_drift_checks()
        self.runner.tick(self.clock.now())

    def settle(self) -> None:
        """Until the workers are idle (distributed); nothing embedded."""
        self.runner.wait_idle()
