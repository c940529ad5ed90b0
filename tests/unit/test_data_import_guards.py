"""`clm data import` refuses nonsense with a clear error naming the problem, and stores nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.bootstrap import Container
from app.cli.main import cli

HEADER = "timestamp,open,high,low,close,volume"


def _cli(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _stored() -> list:  # type: ignore[type-arg]
    return json.loads(_cli("data", "series").stdout)


def _lines(source: Path, count: int = 50) -> list[str]:
    return source.read_text().splitlines()[: count + 1]


def _import(path: Path, symbol: str = "SOL/USDT", timeframe: str = "1h"):  # type: ignore[no-untyped-def]
    return _cli("data", "import", str(path), "--symbol", symbol, "--timeframe", timeframe, "--exchange", "binance")


def test_a_1h_file_imported_as_5m_is_refused(sqlite_container: Container, data_dir: Path) -> None:
    result = _import(data_dir / "binance_SOLUSDT_1h.csv", timeframe="5m")
    assert result.exit_code == 1
    assert "[spacing]" in result.stderr and "60 minutes apart" in result.stderr
    assert "nothing was stored" in result.stderr
    assert _stored() == []


@pytest.mark.parametrize(("column", "value"), [("high", "1e308"), (None, "1e300")])
def test_absurd_values_are_refused(sqlite_container: Container, data_dir: Path, tmp_path: Path, column, value) -> None:
    lines = _lines(data_dir / "binance_SOLUSDT_1h.csv")
    fields = lines[10].split(",")
    if column is None:
        fields[1:] = [value] * 5
    else:
        fields[HEADER.split(",").index(column)] = value
    lines[10] = ",".join(fields)
    path = tmp_path / "absurd.csv"
    path.write_text("\n".join(lines) + "\n")
    result = _import(path)
    assert result.exit_code == 1 and "[magnitude]" in result.stderr and "line 11" in result.stderr
    assert _stored() == []


@pytest.mark.parametrize("symbol", ["", "../../etc/passwd", "BTCUSDT", "A" * 16 + "/" + "B" * 15])
def test_symbols_not_in_the_exchange_format_are_refused(sqlite_container: Container, data_dir: Path, symbol) -> None:
    result = _import(data_dir / "binance_SOLUSDT_1h.csv", symbol=symbol)
    assert result.exit_code == 1 and "BASE/QUOTE" in result.stderr and "Traceback" not in result.output
    assert _stored() == []


def test_broken_gzip_files_are_refused_naming_the_file(sqlite_container: Container, data_dir: Path, tmp_path) -> None:
    compressed = gzip.compress((data_dir / "binance_SOLUSDT_1h.csv").read_bytes())
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(compressed[: len(compressed) // 2])
    not_gzip = tmp_path / "plain.csv.gz"
    not_gzip.write_bytes((data_dir / "binance_SOLUSDT_1h.csv").read_bytes())
    for path in (truncated, not_gzip):
        result = _import(path)
        assert result.exit_code == 1, result.output
        assert f"{path}: not a readable gzip-compressed CSV file" in result.stderr and "Aborted" not in result.output
    assert _stored() == []
