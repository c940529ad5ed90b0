"""bench/clm_value.py on real candles (`--source files`): 5m test files replayed as 15m candles through the
whole loop, the figures per policy over the replay and per month."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

import workers.wsgi  # noqa: F401  (as the bench: the Celery dispatcher and the API in this process)
from bench import clm_value

DATA = Path(__file__).resolve().parents[1] / "data" / "ohlcv"


def _args(tmp_path: Path, **changes: object) -> argparse.Namespace:
    args = argparse.Namespace(
        files=[str(DATA)],
        symbols="BTC/USDT,ETH/USDT",
        timeframe="15m",
        file_timeframe="5m",
        start="2020-12-01",
        history_days=14.0,
        training_days=12.0,
        replay_days=2.5,
        loops="full",
        min_shadow_samples=None,
        max_shadow_samples=None,
        shadow_patience_days=None,
        workdir=str(tmp_path),
    )
    for key, value in changes.items():
        setattr(args, key, value)
    return args


def test_without_replay_days_the_replay_runs_to_the_files_end(tmp_path: Path) -> None:
    args = _args(tmp_path, replay_days=None, symbols="BTC/USDT,ETH/USDT,SOL/USDT,ADA/USDT")
    config = clm_value.files_config(args, seed=1, loop="scheduled")
    shared = clm_value.shared_candles(config)
    assert config.file_timeframe == "5m" and config.timeframe == "15m" and config.loop == "scheduled"
    # Shadow looks from 2 to 8 days of hourly calls on every symbol: 48 pairs a symbol, x 4.
    assert (config.min_shadow_samples, config.max_shadow_samples) == (192, 768)
    # Patience covers the last look with room (1.5 x its 8 days), so no newer challenger retires a test early;
    # and it reaches the policy the replay runs under.
    assert config.shadow_patience_days == 12.0
    assert config.policy_patch()["clm_config"]["shadow_patience_days"] == 12.0
    assert config.symbols == ("BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT")
    # 28 days of 5m files from 2020-12-01: 14 of history, every later shared 15m candle replayed.
    assert config.replay_days * 96 == len(shared) - 14 * 96 and 13 < config.replay_days <= 14
    assert all(t % 900_000 == 0 for t in shared)


def test_a_short_real_replay_reports_each_policy_over_the_replay_and_per_month(tmp_path: Path) -> None:
    out = clm_value.one_files_seed(_args(tmp_path), seed=3)
    replay = out["replay"]
    assert replay["symbols"] == ["BTC/USDT", "ETH/USDT"] and replay["timeframe"] == "15m"
    assert replay["from"] == "2020-12-15 00:00" and replay["candles_per_symbol"] == 240
    assert out["seconds"]["full"] > 0 and out["stages"]["full"]["job:regime-detection"] > 0
    assert out["jobs_run"]["full"]["regime-detection"] >= 200 and "drift-check" in out["jobs_run"]["full"]
    for policy in ("full", "frozen"):
        figures = out[policy]
        assert figures["all"]["rows"] == out["rows"] > 0
        assert set(figures["months"]) == {"2020-12"}
        for metric in ("net_pnl", "max_drawdown", "sharpe"):
            assert math.isfinite(figures["all"][metric]), (policy, metric)
        assert set(figures["models"]) == {"xgboost", "lightgbm"}
    # The book as traded: flat while a CRITICAL drift's halt lasted (none resumes it in a replay).
    traded = out["full_as_traded"]
    assert 0.0 <= traded["halted_share"] <= 1.0 and traded["all"]["rows"] == out["rows"]
    if traded["halted_share"] == 0.0:
        np.testing.assert_equal(traded["all"], out["full"]["all"])  # NaN hit rates (no trade) alike
    # The frozen book is the full replay's first models only.
    assert all(len(ids) == 1 and ids[0] == out["full"]["models"][t][0] for t, ids in out["frozen"]["models"].items())
    paired = clm_value.paired_by_month(out)
    assert paired["months"] == 1 and paired["wins"] + paired["losses"] + paired["ties"] <= 1
    assert np.isfinite(paired["sign_test_p"])
