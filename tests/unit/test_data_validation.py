"""Every validation rule, each with a real candle file broken in that one way."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from app.data_pipeline import CandleValidationError, read_candle_file, validate_candles
from app.data_pipeline.validation import find_gaps

SOURCE = "binance_ETHUSDT_5m_4w.csv"
Lines = list[str]


def _lines(data_dir: Path) -> Lines:
    return (data_dir / SOURCE).read_text().splitlines()[:200]  # header + 199 candles


def _set(lines: Lines, line: int, column: str, value: str) -> None:
    """Set a field of a CSV line (line 1 is the header)."""
    header = lines[0].split(",")
    fields = lines[line - 1].split(",")
    fields[header.index(column)] = value
    lines[line - 1] = ",".join(fields)


def _field(lines: Lines, line: int, column: str) -> str:
    return lines[line - 1].split(",")[lines[0].split(",").index(column)]


def _missing_column(lines: Lines) -> None:
    for i, text in enumerate(lines):
        lines[i] = ",".join(text.split(",")[:5])  # drop volume


def _not_numeric(lines: Lines) -> None:
    _set(lines, 7, "close", "n/a")
    _set(lines, 9, "volume", "")


def _seconds(lines: Lines) -> None:
    _set(lines, 5, "timestamp", str(int(_field(lines, 5, "timestamp")) // 1000))


def _off_grid(lines: Lines) -> None:
    _set(lines, 12, "timestamp", str(int(_field(lines, 12, "timestamp")) + 60_000))


def _conflicting_duplicate(lines: Lines) -> None:
    copy = lines[19].split(",")  # line 20
    copy[4] = str(float(copy[4]) * 1.001)  # another close for the same open time
    lines.insert(20, ",".join(copy))  # becomes line 21


def _not_increasing(lines: Lines) -> None:
    lines[29], lines[30] = lines[30], lines[29]  # lines 30 and 31 swapped


def _ohlc(lines: Lines) -> None:
    _set(lines, 40, "low", str(float(_field(lines, 40, "high")) * 1.01))


def _price_not_positive(lines: Lines) -> None:
    _set(lines, 50, "open", "0")
    _set(lines, 50, "low", "0")


def _negative_volume(lines: Lines) -> None:
    _set(lines, 60, "volume", "-3.5")


BROKEN: dict[str, tuple[Callable[[Lines], None], list[int]]] = {
    "columns": (_missing_column, []),
    "numeric": (_not_numeric, [7, 9]),
    "milliseconds": (_seconds, [5]),
    "grid": (_off_grid, [12]),
    "conflicting_duplicate": (_conflicting_duplicate, [20, 21]),
    "increasing": (_not_increasing, [31]),
    "ohlc": (_ohlc, [40]),
    "price_positive": (_price_not_positive, [50]),
    "volume_non_negative": (_negative_volume, [60]),
}


@pytest.mark.parametrize("rule", list(BROKEN))
def test_each_rule_refuses_a_file_that_breaks_it(data_dir: Path, tmp_path: Path, rule: str) -> None:
    breaker, lines_named = BROKEN[rule]
    lines = _lines(data_dir)
    breaker(lines)
    path = tmp_path / f"broken_{rule}.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CandleValidationError) as caught:
        read_candle_file(path, "5m")
    error = caught.value
    assert rule in error.rules
    assert str(path) in str(error) and f"[{rule}]" in str(error)
    violation = next(v for v in error.violations if v.rule == rule)
    assert list(violation.rows) == lines_named
    for line in lines_named:
        assert str(line) in str(error)


def test_a_clean_file_passes_and_keeps_every_value(data_dir: Path, tmp_path: Path) -> None:
    clean, report = read_candle_file(data_dir / SOURCE, "5m")
    original = pd.read_csv(data_dir / SOURCE)
    pd.testing.assert_frame_equal(clean, original, check_dtype=False)
    assert report.rows_in == report.rows_out == len(original)
    assert report.duplicates_dropped == 0


def test_identical_duplicates_are_dropped_and_counted(data_dir: Path, tmp_path: Path) -> None:
    lines = _lines(data_dir)
    lines.insert(10, lines[9])
    lines.insert(50, lines[49])
    path = tmp_path / "dupes.csv"
    path.write_text("\n".join(lines) + "\n")
    clean, report = read_candle_file(path, "5m")
    assert report.duplicates_dropped == 2
    assert len(clean) == 199 and clean["timestamp"].is_unique


def test_gaps_are_reported_never_filled(data_dir: Path) -> None:
    # The real file has Binance's outage of 2020-12-21 (46 candles) and one of 12 candles.
    clean, report = read_candle_file(data_dir / "binance_BTCUSDT_5m_4w.csv", "5m")
    assert [g.missing for g in report.gaps] == [46, 12]
    assert report.gaps[0].first_missing_ms == 1608559800000
    assert report.missing_candles == 58
    assert len(clean) == 8064  # nothing added
    assert find_gaps(clean["timestamp"].to_numpy()[:10], 300_000) == []


def test_gzip_csv_and_parquet_are_read_too(data_dir: Path, tmp_path: Path) -> None:
    raw = (data_dir / SOURCE).read_bytes()
    gz = tmp_path / "eth.csv.gz"
    gz.write_bytes(gzip.compress(raw))
    from_gz, _ = read_candle_file(gz, "5m")
    parquet = tmp_path / "eth.parquet"
    pd.read_csv(data_dir / SOURCE).to_parquet(parquet)
    from_parquet, _ = read_candle_file(parquet, "5m")
    pd.testing.assert_frame_equal(from_gz, from_parquet)
    broken = pd.read_csv(data_dir / SOURCE).head(50)
    broken.loc[17, "volume"] = -1.0
    broken.to_parquet(parquet)
    with pytest.raises(CandleValidationError, match=r"\[volume_non_negative\].*row 17"):
        read_candle_file(parquet, "5m")


def test_every_broken_rule_is_listed_at_once(data_dir: Path) -> None:
    frame = pd.read_csv(data_dir / SOURCE).head(30)
    frame.loc[3, "volume"] = -1
    frame.loc[8, "high"] = frame.loc[8, "low"] / 2
    with pytest.raises(CandleValidationError) as caught:
        validate_candles(frame, "5m", source="test frame")
    assert caught.value.rules == {"volume_non_negative", "ohlc"}


def test_unknown_file_types_and_timeframes_are_refused(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "candles.xlsx"
    path.write_text("x")
    with pytest.raises(ValueError, match="unknown candle file type"):
        read_candle_file(path, "5m")
    with pytest.raises(ValueError, match="unknown timeframe"):
        read_candle_file(data_dir / SOURCE, "5 minutes")
    with pytest.raises(FileNotFoundError):
        read_candle_file(tmp_path / "absent.csv", "5m")


def test_timeframe_grids() -> None:
    from app.data_pipeline.timeframes import ceil_to_grid, floor_to_grid, on_grid, timeframe_ms

    assert timeframe_ms("5m") == 300_000 and timeframe_ms("4h") == 14_400_000
    monday = pd.Timestamp("2021-01-04").value // 1_000_000  # weekly candles open on Mondays
    assert on_grid(monday, "1w") and not on_grid(monday + 86_400_000, "1w")
    assert ceil_to_grid(monday - 1, "1w") == monday and floor_to_grid(monday + 1, "1w") == monday
    assert ceil_to_grid(1_000, "5m") == 300_000 and floor_to_grid(299_999, "5m") == 0
    weekly = pd.DataFrame(
        {"timestamp": [monday, monday + 604_800_000], "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0}
    )
    assert len(validate_candles(weekly, "1w")[0]) == 2


def test_numbers_strings_and_one_row_frames_give_the_same_clean_candles() -> None:
    """Numeric columns skip the parsing (the replay writes one candle at a time): same values, same dtypes."""
    numeric = pd.DataFrame(
        {
            "timestamp": [1_700_000_100_000, 1_700_000_400_000],
            "open": [10.0, 11.0],
            "high": [12.0, 12.5],
            "low": [9.5, 10.5],
            "close": [11.0, 12.0],
            "volume": [3, 4],  # ints are numbers too
        }
    )
    as_text = numeric.astype(str)
    clean, report = validate_candles(numeric, "5m")
    parsed, _ = validate_candles(as_text, "5m")
    pd.testing.assert_frame_equal(clean, parsed)
    assert clean["timestamp"].dtype == "int64" and clean["volume"].dtype == "float64" and report.rows_out == 2
    one, _ = validate_candles(numeric.iloc[1:2], "5m")
    pd.testing.assert_frame_equal(one, clean.iloc[1:2].reset_index(drop=True))
    broken = numeric.assign(volume=[3, None])
    with pytest.raises(CandleValidationError, match="numeric"):
        validate_candles(broken, "5m")
