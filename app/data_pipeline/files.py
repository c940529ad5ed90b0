"""Candle files: CSV (also .csv.gz) and Parquet, in the standard columns.

Format: `timestamp,open,high,low,close,volume`; timestamp is the candle open time in
integer milliseconds since the epoch, UTC (ISO-8601 strings are accepted too). A file
that breaks a validation rule is refused with its name, the rule and the line numbers
(CSV: the header is line 1) or row numbers (Parquet: from 0); the store is untouched.

A file that cannot be read (a truncated or non-gzip `.csv.gz`, a broken Parquet file) is a
`CandleFileError`; one whose candles are further apart than the timeframe everywhere (a 1h
file read as 5m) a `CandleValidationError` of rule `spacing`; an import's symbol must be in
the exchange's format BASE/QUOTE (`InvalidSymbolError`). All are `ValueError`s naming the file
or the symbol, and nothing is stored.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from app.data_pipeline.candle_store import CandleStore, OnConflict, WriteResult
from app.data_pipeline.timeframes import timeframe_ms
from app.data_pipeline.validation import CandleValidationError, ValidationReport, Violation, validate_candles

if TYPE_CHECKING:
    from app.core.container import Container

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
# The exchange's market symbol, as the API takes it: BASE/QUOTE, letters and digits.
SYMBOL_PATTERN = re.compile(r"[A-Za-z0-9]+/[A-Za-z0-9]+")
MAX_SYMBOL_LENGTH = 20


class CandleFileError(ValueError):
    """A candle file that cannot be read as its type (truncated, not gzip, not Parquet)."""


class InvalidSymbolError(ValueError):
    """A market symbol not in the exchange's BASE/QUOTE format."""


def check_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or len(symbol) > MAX_SYMBOL_LENGTH or not SYMBOL_PATTERN.fullmatch(symbol):
        raise InvalidSymbolError(
            f"symbol {symbol!r} is not a market symbol: expected BASE/QUOTE (letters and digits, e.g. BTC/USDT), "
            f"at most {MAX_SYMBOL_LENGTH} characters"
        )
    return symbol


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
    kind = _kind(path)
    try:
        if kind == "csv":
            # Blank lines are kept (as empty rows) so that reported line numbers match the file.
            raw = pd.read_csv(path, skip_blank_lines=False, dtype=str, keep_default_na=False, na_values=[""])
        else:
            raw = pd.read_parquet(path)
    except (EOFError, OSError, zlib.error, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        # EOFError: a truncated .gz; gzip.BadGzipFile (an OSError): not gzip at all.
        what = "gzip-compressed CSV" if path.name.lower().endswith(".gz") else kind.upper()
        raise CandleFileError(f"{path}: not a readable {what} file ({type(exc).__name__}: {exc})") from None
    first, word = (2, "line") if kind == "csv" else (0, "row")
    clean, report = validate_candles(raw, timeframe, source=str(path), first_row_number=first, row_word=word)
    _check_spacing(clean, timeframe, str(path), word)
    return clean, report


def _check_spacing(clean: pd.DataFrame, timeframe: str, source: str, row_word: str) -> None:
    """The closest candles of the file must be one timeframe apart: a 1h file read as 5m is on the
    5m grid too, but every candle would be followed by a gap of 11."""
    if len(clean) < 2:
        return
    spacing = int(np.diff(clean["timestamp"].to_numpy()).min())
    step = timeframe_ms(timeframe)
    if spacing != step:
        detail = (
            f"the closest candles are {spacing // 60_000} minutes apart, the timeframe {timeframe} is "
            f"{step // 60_000} minutes: is the file of another timeframe?"
        )
        raise CandleValidationError(source, [Violation("spacing", (), detail)], row_word)


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
    check_symbol(symbol)
    clean, _ = read_candle_file(path, timeframe)
    covered = None
    if len(clean):
        covered = (int(clean["timestamp"].iloc[0]), int(clean["timestamp"].iloc[-1]) + timeframe_ms(timeframe))
    return CandleStore(container).write(
        exchange, symbol, timeframe, clean, on_conflict=on_conflict, covered=covered, source=str(path)
    )
