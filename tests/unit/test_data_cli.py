"""`clm data import|synth|series` as an operator runs them, on the embedded database."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from app.bootstrap import Container
from app.cli.main import cli


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_import_a_file_then_refuse_a_broken_one(sqlite_container: Container, tmp_path: Path, data_dir: Path) -> None:
    source = data_dir / "binance_BTCUSDT_5m_4w.csv"
    code, out, err = _cli(
        "data", "import", str(source), "--symbol", "BTC/USDT", "--timeframe", "5m", "--exchange", "binance"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["inserted"] == 8064 and summary["gaps"] == 2 and summary["missing_candles"] == 58

    lines = source.read_text().splitlines()
    fields = lines[99].split(",")
    fields[3] = str(float(fields[2]) * 2)  # low above high on line 100
    lines[99] = ",".join(fields)
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(lines) + "\n")
    code, out, err = _cli("data", "import", str(broken), "--symbol", "BTC/USDT", "--timeframe", "5m")
    assert code == 1
    assert "[ohlc]" in err and "line 100" in err and "nothing was stored" in err

    series = json.loads(_cli("data", "series")[1])
    assert [(s["symbol"], s["rows"]) for s in series] == [("BTC/USDT", 8064)]


def test_synth_writes_files_and_stores(sqlite_container: Container, tmp_path: Path) -> None:
    out_dir = tmp_path / "synthetic"
    code, out, err = _cli(
        "data", "synth", "--symbols", "AAA/USDT,BBB/USDT", "--days", "3", "--timeframe", "1h",
        "--shift-at", "2024-01-03", "--out", str(out_dir), "--store",
    )  # fmt: skip
    assert code == 0, err
    info = json.loads(out)
    assert info["rows"] == 72 and info["shift_index"] == 48 and info["stored"] is True
    assert sorted(p.name for p in out_dir.iterdir()) == ["synthetic_AAAUSDT_1h.csv", "synthetic_BBBUSDT_1h.csv"]
    series = json.loads(_cli("data", "series")[1])
    assert {(s["exchange"], s["symbol"], s["rows"]) for s in series} == {
        ("synthetic", "AAA/USDT", 72),
        ("synthetic", "BBB/USDT", 72),
    }
