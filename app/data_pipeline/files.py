"""Candle files: CSV (also .csv.gz) and Parquet, in the standard columns.

Format: `timestamp,open,high,low,close,volume`; timestamp is the candle open time in
integer milliseconds since the epoch, UTC (ISO-8601 strings are accepted too). A file
that breaks a validation rule is refused with its name, the rule and the line numbers
(CSV: the header is line 1) or row numbers (Parquet: from 0); the store is untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from app.data_pipeline.candle_store import CandleStore, OnConflict, WriteResult
from app.data_pipeline.timeframes import timeframe_ms
from app.data_pipeline.validation import ValidationReport, validate_candles

if TYPE_CHECKING:
    from app.core.container import Container

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise ValueError(f"{path}: unknown candle file type (expected {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)})")


def read_candle_file(path: str | Path, timeframe: str) -> tuple[pd.DataFrame, ValidationReport]:
    """Read and validate one file; clean candles and the report (duplicates dropped, gaps)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"candle file not found: {path}")
    if _kind(path) == "csv":
        # Blank lines are kept (as empty rows) so that reported line numbers match the file.
        raw = pd.read_csv(path, skip_blank_lines=False, dtype=str, keep_default_na=False, na_values=[""])
        return validate_candles(raw, timeframe, source=str(path), first_row_number=2, row_word="line")
    raw = pd.read_parquet(path)
    return validate_candles(raw, timeframe, source=str(path), first_row_number=0, row_word="row")


def import_candle_file(
    container: Container,
    path: str | Path,
    *,
    symbol: str,
    timeframe: str,
    exchange: str,
    on_conflict: OnConflict = "reject",
) -> WriteResult:
    """Validate a file and store its candles; the file's span counts as covered for that series."""
    clean, _ = read_candle_file(path, timeframe)
    covered = None
    if len(clean):
        covered = (int(clean["timestamp"].iloc[0]), int(clean["timestamp"].iloc[-1]) + timeframe_ms(timeframe))
    return CandleStore(container).write(
        exchange, symbol, timeframe, clean, on_conflict=on_conflict, covered=covered, source=str(path)
    )
