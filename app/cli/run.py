"""`python -m workers.cli run`: options -> RunConfig -> run_simulation; bad options get a clear message."""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path

import click

from app.simulation.config import RunConfig, files_from_paths
from app.simulation.run import run_simulation


def build_config(
    seed: int, source: str, files: list[str], symbols: str | None, days: float | None, report: str | None, quiet: bool
) -> RunConfig:
    config = RunConfig(seed=seed, quiet=quiet, report_path=Path(report) if report else None)
    if source != "synthetic":
        # Real candles come as 1h files (tests/data/ohlcv, ../shared/data/ohlcv) or from ccxt:
        # a decision every candle, and a week's window for the drift checks.
        config = replace(
            config, timeframe="1h", decision_every=1, drift_lookback_days=7.0, history_days=40.0, training_days=30.0
        )
    chosen = tuple(s.strip() for s in symbols.split(",") if s.strip()) if symbols else None
    if source == "files":
        if not files:
            raise click.BadParameter("source files needs --files (CSV/Parquet files or folders)", param_hint="--files")
        found = files_from_paths(files, config.timeframe)
        if chosen:
            missing = [s for s in chosen if s not in found]
            if missing:
                raise click.BadParameter(f"no file for {missing}; found {sorted(found)}", param_hint="--symbols")
            found = {s: found[s] for s in chosen}
        if not found:
            raise click.BadParameter(f"no {config.timeframe} candle files in {files}", param_hint="--files")
        config = replace(config, source="files", files=found, symbols=tuple(sorted(found)), shift_after_days=None)
    elif source == "exchange":
        config = replace(config, source="exchange", symbols=chosen or ("BTC/USDT", "ETH/USDT"), shift_after_days=None)
    elif chosen:
        config = replace(config, symbols=chosen)
    if days is not None:
        shift = config.shift_after_days
        if shift is not None and shift >= days:
            shift = days * 0.4  # keep the shift inside a shorter replay
        config = replace(config, replay_days=days, shift_after_days=shift)
    return config


def run_command(
    seed: int, source: str, files: list[str], symbols: str | None, days: float | None, report: str | None, quiet: bool
) -> int:
    try:
        config = build_config(seed, source, files, symbols, days, report, quiet)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    # Library chatter (Lightning, sklearn feature names) would bury the progress lines.
    warnings.filterwarnings("ignore")
    for name in ("lightning", "pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Every alert is still raised and delivered (events, webhook); on the console it would repeat
    # hundreds of times per simulated day, and the timeline at the end shows them collapsed.
    logging.getLogger("app.operations.alerts").setLevel(logging.ERROR)
    result = run_simulation(config, echo=click.echo)
    checks = result.story.checks() if result.story else []
    happened = sum(1 for _, ok, _ in checks if ok)
    click.echo(
        f"run finished in {result.stages.get('total', 0):.0f} s: {happened}/{len(checks)} steps of the story happened; "
        f"report {result.report_path}"
    )
    return 0
