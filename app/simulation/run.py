"""The main run: initial data and training, then the replay, then the report.

`run_simulation(config)` builds its own embedded container (a fresh SQLite file and
artifact folder under `var/runs/run-<seed>/`) unless one is given (the end-to-end test
passes a distributed one), installs a simulated clock, stores the run's policy, and goes.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from quantum_trader_client import CLMClient

from app.bootstrap import bootstrap, dispatcher_for, set_container
from app.core.clock import Clock, SimulatedClock, use_clock
from app.core.container import Container
from app.core.settings import REPO_ROOT, Mode, Settings
from app.data_pipeline import CandleStore
from app.forecasters import forecaster_class
from app.model_registry import ModelRegistry
from app.model_registry.records import ACTIVE, SHADOW
from app.retraining import RetrainingOrchestrator
from app.retraining.jobs import COMPLETED, PARTIAL
from app.rl.agent import RL_RANDOM
from app.simulation.api_client import in_process_client
from app.simulation.config import RunConfig
from app.simulation.engine import EngineSetup, TradingEngine
from app.simulation.jobs import JobRunner
from app.simulation.market import MarketFeed, from_ms, load_market
from app.simulation.report import write_report
from app.simulation.result import Echo, RunResult
from app.simulation.world import SimulatedWorld


def embedded_container(config: RunConfig, root: Path | None = None) -> Container:
    """A fresh embedded container for the run (its folder is emptied first: same seed, same run)."""

    folder = root or REPO_ROOT / "var" / "runs" / f"run-{config.seed}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # One training thread unless told otherwise: OpenMP threads that spin on a busy (shared)
    # machine made LightGBM minutes slower than one thread; CLM_TRAIN_THREADS overrides.
    threads = int(os.environ.get("CLM_TRAIN_THREADS", "1"))
    settings = Settings(
        CLM_MODE=Mode.EMBEDDED,
        DATABASE_URL=f"sqlite:///{folder / 'clm.sqlite'}",
        ARTIFACT_ROOT=str(folder / "artifacts"),
        CLM_TRAIN_THREADS=threads,
        CLM_API_TOKEN=secrets.token_urlsafe(24),  # the engine calls the API with it, as an external engine would
    )
    container = bootstrap(settings, dispatcher_for(settings), migrate=True)
    set_container(container)  # the tasks the beat runs eagerly use the process's container
    return container


def run_simulation(
    config: RunConfig,
    container: Container | None = None,
    echo: Echo = print,
    clock: SimulatedClock | None = None,
    api: CLMClient | None = None,
) -> RunResult:
    """`api`: the engine's client of the API (the real-stack test's points at gunicorn); by default the
    API built on `container`, served in this process."""
    started = time.perf_counter()
    stages: dict[str, float] = {}
    container = container or embedded_container(config)
    # The RL agents' exploration, seeded by the run's seed: the same seed makes the same run. (Agents in
    # another process, as a real-stack API's, explore with their own entropy.)
    container.extras[RL_RANDOM] = random.Random(config.seed)
    say = (lambda _: None) if config.quiet else echo
    clock = clock or SimulatedClock(config.replay_start)
    use_clock(clock)
    try:
        t0 = time.perf_counter()
        feed = load_market(config, container if config.source == "exchange" else None)
        replay_start = from_ms(int(feed.timestamps[feed.replay_index]))
        clock.set(replay_start)
        container.policy_store.ensure_default()
        policy_version, _ = container.policy_store.update(
            config.policy_patch(), author="simulation", comment=f"main run, seed {config.seed}: small and fast"
        )
        _store_history(container, config, feed)
        stages["data"] = time.perf_counter() - t0
        _announce(say, config, feed, policy_version)

        runner = JobRunner(container, only=config.beat_jobs())
        t0 = time.perf_counter()
        initial_job_id = _initial_training(container, runner, say)
        stages["initial_training"] = time.perf_counter() - t0

        api = api or in_process_client(container)
        world = SimulatedWorld(container, config, feed, clock, runner)
        engine = TradingEngine(
            config, _engine_setup(container), feed, world, api, progress=_progress_printer(say, container, runner, feed)
        )
        t0 = time.perf_counter()
        stats = engine.run()
        stages["simulation"] = time.perf_counter() - t0
        for label, seconds in runner.seconds.items():
            stages[f"job:{label}"] = seconds
        result = RunResult(config, container, feed, stats, stages, initial_job_id, policy_version)
        result.runner_calls = list(runner.calls)
        result.prediction_ms = {m: 1000.0 * stats.prediction_seconds[m] / n for m, n in stats.predictions.items() if n}

        t0 = time.perf_counter()
        result.report_path = write_report(result, say)
        stages["report"] = time.perf_counter() - t0
        stages["total"] = time.perf_counter() - started
        return result
    finally:
        use_clock(Clock())


def _engine_setup(container: Container) -> EngineSetup:
    """The engine's configuration, taken from the run's policy (an external engine is configured alike)."""
    policy = container.policy_store.get()
    types = tuple(policy.training.model_types)
    return EngineSetup(
        horizon=policy.labels.horizon,
        fee_pct=policy.labels.fee_pct,
        model_types=types,
        slow_model_types=frozenset(m for m in types if forecaster_class(m).NEEDS_GPU),
    )


def _store_history(container: Container, config: RunConfig, feed: MarketFeed) -> None:
    store = CandleStore(container)
    policy = container.policy_store.get()
    for symbol, frame in feed.history().items():
        store.write(policy.data.exchange, symbol, policy.data.timeframe, frame, on_conflict="replace")


def _initial_training(container: Container, runner: JobRunner, say: Echo) -> str:
    """All four model types trained through the retraining canvas; the first of each type is ACTIVE."""

    say("initial training of every model type (the retraining canvas, reason 'initial') ...")
    orchestrator = RetrainingOrchestrator(container)
    job_id = orchestrator.start_full(reason="initial")
    runner.wait_idle()
    job = orchestrator.get_job(job_id)
    for model_type, entry in sorted(job.models.items()):
        say(
            f"  {model_type:9s} {entry.get('status')}: {entry.get('registry_status', '?')} "
            f"{entry.get('model_id', '')} in {entry.get('seconds', 0):.1f} s {entry.get('error') or ''}"
        )
    if job.status not in (COMPLETED, PARTIAL):
        raise RuntimeError(f"initial training {job_id} ended {job.status}: {job.error_message}")
    return job_id


def _announce(say: Echo, config: RunConfig, feed: MarketFeed, policy_version: int) -> None:
    first = from_ms(int(feed.timestamps[0]))
    start = from_ms(int(feed.timestamps[feed.replay_index]))
    end = from_ms(int(feed.timestamps[-1])) + feed.step
    say(f"Quantum Trader CLM: main run, seed {config.seed}, source {config.source}, {', '.join(feed.symbols)}")
    say(f"  history {first:%Y-%m-%d} .. {start:%Y-%m-%d %H:%M} ({feed.replay_index} candles of {config.timeframe})")
    say(f"  replay  {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} ({feed.steps} candles, simulated clock)")
    if feed.info.get("shift_at_ms") is not None:
        say(f"  injected market shift at {from_ms(feed.info['shift_at_ms']):%Y-%m-%d %H:%M}")
    patch = config.policy_patch()
    say(
        f"  policy v{policy_version} (author 'simulation'): trees {config.trees}, neural max_steps "
        f"{config.neural_steps}, cv_folds 2, shadow min_samples {config.min_shadow_samples} "
        f"max_samples {config.max_shadow_samples} "
        f"(the policy's auto_promote_threshold knob), drift checks every "
        f"{patch['clm_config']['drift_detection']['check_interval_hours']:g} h over the last "
        f"{config.drift_lookback_days:g} d from replay day "
        f"{config.drift_checks_after_days:g}, full retraining every {config.schedule_interval_days:g} d, "
        f"retraining cooldown {config.retraining_cooldown_hours:g} h, training window "
        f"{patch['data']['lookback_days']:g} d; a trading decision every {config.decision_every} candle(s), "
        f"the neural models asked at every {config.neural_every} decision(s) (their inference is the slow part)"
    )
    if not config.baseline_gate:
        say(
            "  BASELINE GATE OFF (clm_config.baseline_gate.enabled=false): models go live without beating "
            "zero return and buy-and-hold on their walk-forward tests (RunConfig.baseline_gate turns it on)"
        )


def _progress_printer(
    say: Echo, container: Container, runner: JobRunner, feed: MarketFeed
) -> Callable[[TradingEngine, int], None]:
    per_day = max(1, int(timedelta(days=1) / feed.step))  # one progress line per simulated day
    wall = time.perf_counter()

    def progress(engine: TradingEngine, offset: int) -> None:
        if (offset + 1) % per_day and offset + 1 != feed.steps:
            return

        active = {m.model_type: m.version for m in ModelRegistry(container).list_models(status=ACTIVE)}
        shadow = {m.model_type: m.version for m in ModelRegistry(container).list_models(status=SHADOW)}
        runs = runner.runs
        say(
            f"[{engine.clock_now():%Y-%m-%d %H:%M}] day {(offset + 1) // per_day:>2}/{feed.steps // per_day} "
            f"trades {engine.stats.trades_closed:>3} (+{len(engine.open)} open) balance {engine.balance:9.2f} "
            f"regime {engine.regime():8s} active {_versions(active)} shadow {_versions(shadow) or '-'} "
            f"jobs drift {runs['drift-check']} retrain {runs['full-retraining']} "
            f"shadow-eval {runs['shadow-evaluation']}{' TRADING HALTED' if engine.halted() else ''} "
            f"({time.perf_counter() - wall:.0f} s)"
        )

    return progress


def _versions(versions: dict[str, Any]) -> str:
    short = {"xgboost": "xgb", "lightgbm": "lgbm", "nhits": "nhits", "patchtst": "ptst"}
    return " ".join(f"{short.get(m, m)}:{v}" for m, v in sorted(versions.items()))
