"""Feature build at the seed's scale: 50 symbols x 180 days of 5m candles (~2.6 M rows).

Real candle files are tiled to that scale (each symbol a different window of a real
series; a file shorter than 180 days is repeated with its prices joined end to start).
Measured in one run:

- `seconds`: `engineer_features` for every symbol (one feature frame each);
- `assemble_seconds`: those frames concatenated into one long frame (as a dataset has),
  reported apart because it is memory traffic, not feature computation;
- `talib_seconds`: the baseline, the very TA-Lib calls that build made, with the same
  arguments, called directly (recorded per symbol, then replayed under the timer);
- `peak_mb`: the process's peak resident memory.

Goal (issue 3): seconds <= 1.5 x talib_seconds, peak under 3 GB. Usage:

    .venv/bin/python bench/features.py [--data DIR] [--symbols 50] [--days 180]

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import talib

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.core.policy import FeatureConfig  # noqa: E402
from app.data_pipeline import features as features_module  # noqa: E402
from app.data_pipeline.features import engineer_features, feature_columns  # noqa: E402

STEP_MS = 300_000


def load_series(data_dir: Path) -> list[pd.DataFrame]:
    files = sorted(p for p in data_dir.iterdir() if p.name.endswith(("_5m.csv", "_5m.csv.gz", "_5m.parquet")))
    if not files:
        raise SystemExit(f"no 5m candle files (*_5m.csv[.gz] or *_5m.parquet) in {data_dir}")
    frames = []
    for path in files:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        frames.append(frame[["timestamp", "open", "high", "low", "close", "volume"]].astype("float64"))
    return frames


def tile(frame: pd.DataFrame, rows: int, offset: int) -> pd.DataFrame:
    """`rows` candles from `frame` starting at `offset`, repeating it (prices joined) if too short."""
    prices = frame[["open", "high", "low", "close"]].to_numpy()
    volume = frame["volume"].to_numpy()
    parts, vols, scale = [], [], 1.0
    while sum(len(p) for p in parts) < offset + rows:
        parts.append(prices * scale)
        vols.append(volume)
        scale *= prices[-1, 3] / prices[0, 0]  # the next copy opens where this one closed
    block = np.concatenate(parts)[offset : offset + rows]
    out = pd.DataFrame(block, columns=["open", "high", "low", "close"])
    out.insert(0, "timestamp", (1_600_000_000_000 // STEP_MS + np.arange(rows, dtype=np.int64)) * STEP_MS)
    out["volume"] = np.concatenate(vols)[offset : offset + rows]
    return out


def make_market(data_dir: Path, symbols: int, days: float) -> list[pd.DataFrame]:
    series = load_series(data_dir)
    rows = int(days * 288)
    market = []
    for i in range(symbols):
        source = series[i % len(series)]
        copy = i // len(series)
        offset = (copy * 2_311) % max(1, len(source) - rows) if len(source) > rows else copy * 977
        market.append(tile(source, rows, offset).assign(symbol=f"SYM{i:02d}/USDT"))
    return market


Call = tuple[Callable[..., Any], tuple[Any, ...]]


def record_talib_calls(candles: pd.DataFrame, config: FeatureConfig) -> list[Call]:
    """The TA-Lib calls `engineer_features` makes for these candles, with their arguments."""
    calls: list[Call] = []
    originals: dict[str, Callable[..., Any]] = {}
    for name in talib.get_functions():
        original = getattr(talib, name)
        originals[name] = original

        def recorder(*args: Any, _original: Callable[..., Any] = original) -> Any:
            calls.append((_original, tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)))
            return _original(*args)

        setattr(features_module.talib, name, recorder)
    try:
        engineer_features(candles, config)
    finally:
        for name, original in originals.items():
            setattr(features_module.talib, name, original)
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ohlcv")
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--days", type=float, default=180)
    args = parser.parse_args()
    config = FeatureConfig()

    market = make_market(args.data, args.symbols, args.days)
    rows = sum(len(m) for m in market)
    engineer_features(market[0].iloc[:2000], config)  # warm caches (feature plan), untimed
    gc.collect()

    # Interleaved per symbol, so that both timings see the same load on a shared machine.
    seconds = talib_seconds = 0.0
    talib_calls = 0
    parts = []
    for candles in market:
        calls = record_talib_calls(candles, config)
        talib_calls += len(calls)
        started = time.perf_counter()
        for function, call_args in calls:
            function(*call_args)
        talib_seconds += time.perf_counter() - started
        del calls
        started = time.perf_counter()
        parts.append(engineer_features(candles, config))
        seconds += time.perf_counter() - started
    started = time.perf_counter()
    frame = pd.concat(parts, ignore_index=True)
    assemble_seconds = time.perf_counter() - started
    del parts
    output_rows, output_mb = len(frame), frame.memory_usage(deep=False).sum() / 2**20

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    result = {
        "rows": rows,
        "symbols": args.symbols,
        "days": args.days,
        "features": len(feature_columns(config)),
        "output_rows": output_rows,
        "output_mb": round(output_mb, 1),
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds),
        "talib_seconds": round(talib_seconds, 3),
        "talib_calls_per_symbol": talib_calls // args.symbols,
        "ratio_to_talib": round(seconds / talib_seconds, 3),
        "assemble_seconds": round(assemble_seconds, 3),
        "ratio_with_assembly": round((seconds + assemble_seconds) / talib_seconds, 3),
        "goal_ratio": 1.5,
        "peak_mb": round(peak_mb, 1),
        "goal_peak_mb": 3072,
        "data": str(args.data),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
