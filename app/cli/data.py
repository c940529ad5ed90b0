"""`clm data ...`: import candle files, make a synthetic market, list stored series."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from app.cli.common import data_container as _container
from app.cli.common import echo_json as _print
from app.data_pipeline.candle_store import CandleConflictError, CandleStore
from app.data_pipeline.files import import_candle_file
from app.data_pipeline.synthetic import synthetic_market
from app.data_pipeline.timeframes import timeframe_ms
from app.data_pipeline.validation import CandleValidationError


@click.group()
def data() -> None:
    """Market data: candle files, the synthetic market, the candle store."""


@data.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--symbol", required=True, help="Market symbol as the exchange writes it, e.g. BTC/USDT.")
@click.option("--timeframe", required=True, help="Candle length, e.g. 5m or 1h.")
@click.option("--exchange", default=None, help="Exchange id the candles belong to [default: CLM_EXCHANGE].")
@click.option(
    "--on-conflict",
    type=click.Choice(["reject", "replace", "keep"]),
    default="reject",
    show_default=True,
    help="A candle that differs from the stored one at the same time: refuse the file, replace it, or keep it.",
)
def data_import(file: Path, symbol: str, timeframe: str, exchange: str | None, on_conflict: str) -> None:
    """Validate a CSV, CSV.GZ or Parquet candle FILE and store it (all or nothing)."""

    container = _container()
    exchange = exchange or container.settings.exchange_id
    try:
        result = import_candle_file(
            container,
            file,
            symbol=symbol,
            timeframe=timeframe,
            exchange=exchange,
            on_conflict=on_conflict,  # type: ignore[arg-type]
        )
    except (CandleValidationError, CandleConflictError, ValueError) as exc:
        raise click.ClickException(f"{exc}\nnothing was stored") from None
    report = result.report
    _print(
        {
            "file": str(file),
            "exchange": exchange,
            "symbol": symbol,
            "timeframe": timeframe,
            "inserted": result.inserted,
            "replaced": result.replaced,
            "unchanged": result.unchanged,
            **report.summary(),
            "gap_list": [g.__dict__ for g in report.gaps[:20]],
        }
    )


@data.command("synth")
@click.option("--symbols", default="BTC/USDT,ETH/USDT", show_default=True, help="Comma-separated.")
@click.option("--start", default="2024-01-01", show_default=True, help="First candle (UTC).")
@click.option("--days", default=30.0, show_default=True, type=float)
@click.option("--timeframe", default="5m", show_default=True)
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--shift-at", default=None, help="Time (UTC) from which the market shifts regime.")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Write one CSV per symbol here."
)
@click.option("--store/--no-store", default=False, help="Also store the candles, under exchange 'synthetic'.")
def data_synth(
    symbols: str,
    start: str,
    days: float,
    timeframe: str,
    seed: int,
    shift_at: str | None,
    out: Path | None,
    store: bool,
) -> None:
    """Make a deterministic synthetic market (regime-switching, volatility clustering)."""

    names = [s.strip() for s in symbols.split(",") if s.strip()]
    try:
        periods = int(days * 86_400_000 // timeframe_ms(timeframe))
        shift = datetime.fromisoformat(shift_at) if shift_at else None
        candles, info = synthetic_market(names, datetime.fromisoformat(start), periods, timeframe, seed, shift)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    written: dict[str, str] = {}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for symbol, frame in candles.items():
            path = out / f"synthetic_{symbol.replace('/', '')}_{timeframe}.csv"
            frame.to_csv(path, index=False)
            written[symbol] = str(path)
    if store:
        candle_store = CandleStore(_container())
        step = timeframe_ms(timeframe)
        for symbol, frame in candles.items():
            span = (int(frame["timestamp"].iloc[0]), int(frame["timestamp"].iloc[-1]) + step)
            candle_store.write("synthetic", symbol, timeframe, frame, covered=span, on_conflict="replace")
    _print({**info, "regimes": info["regimes"][:50], "files": written, "stored": store, "rows": periods})


@data.command("series")
def data_series() -> None:
    """Every stored candle series: rows, first and last open time, covered ranges."""

    store = CandleStore(_container())
    rows = store.series()
    for row in rows:
        row["covered"] = store.coverage(str(row["exchange"]), str(row["symbol"]), str(row["timeframe"]))
    _print(rows)
