"""bench/learnability.py: frozen and retrained models on the synthetic market's shift, tested on the same rows."""

from __future__ import annotations

import argparse

import numpy as np

from bench import learnability


def test_one_seed_scores_each_window_against_the_frozen_model_on_the_same_rows() -> None:
    args = argparse.Namespace(symbols=2, model_type="xgboost", training_days=6.0, shift_after_days=1.0, test_days=2.0)
    out = learnability.one_seed(args, seed=3, windows=[2.0, 3.0])
    # The test rows start a label horizon after the longest window and end where the last label does:
    # 2 symbols x (2 days of 15m candles - 2 x 12).
    assert out["test_rows"] == 2 * (2 * 96 - 2 * 12) and out["test_calls"] == out["test_rows"] // 4
    assert set(out["windows"]) == {"2.0", "3.0"}
    for cell in out["windows"].values():
        assert -1 <= cell["corr"] <= 1 and 0 <= cell["p_all"] <= 1 and 0 <= cell["p_calls"] <= 1
        assert np.isfinite(cell["pnl_bp"])
    assert 0 < out["ceiling_corr"] <= 1 and np.isfinite(out["frozen_pnl_bp"])
    table = learnability.summary([out, out], [2.0, 3.0], level=0.025)
    assert table["2.0"]["corr_mean"] == out["windows"]["2.0"]["corr"] and table["2.0"]["corr_sd"] == 0.0
    assert table["3.0"]["ahead_of_frozen"] == 2 * out["windows"]["3.0"]["ahead_all"]


def test_the_shifted_market_is_what_the_frozen_model_was_not_trained_on() -> None:
    # The windows are cut after the shift: the features' scale changes there (2.5x the volatility; 1.8x
    # in the 12-hour realised volatility's median, measured).
    policy = learnability.run_policy(["SYNA/USDT"], 6.0)
    frame = learnability.market_rows(3, ["SYNA/USDT"], policy, days=10.0, shift_day=7.0)
    before, after = frame[frame["day"] < 7.0], frame[frame["day"] >= 7.5]
    assert after["rvol_48"].median() > 1.5 * before["rvol_48"].median()
