"""The evaluation can see leakage, and the pipeline has none.

Horizon-1 labels (one candle ahead) on the four 5-minute files, so test rows are nearly
independent and +-3 points is several standard errors (about 3,000 test rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.forecasters import MODEL_TYPES, ForecastSpec
from app.model_training.evaluation import evaluate_model
from app.model_training.splits import chronological_split
from tests.unit.training_helpers import labelled_frame

FIVE_MINUTE = tuple(f"binance_{s}USDT_5m_4w.csv" for s in ("BTC", "ETH", "SOL", "ADA"))
PARAMS = {"n_estimators": 60, "max_depth": 5}


@pytest.fixture(scope="module")
def dataset() -> tuple[pd.DataFrame, list[str]]:
    return labelled_frame(FIVE_MINUTE, horizon=1)


def accuracy(frame: pd.DataFrame, features: list[str], shuffle_seed: int | None = None) -> float:
    split = chronological_split(frame, 0.8, 0.1, purge=1)
    train, valid, test = (frame.iloc[rows].copy() for rows in (split.train, split.valid, split.test))
    if shuffle_seed is not None:
        rng = np.random.default_rng(shuffle_seed)
        for part in (train, valid):
            labels = part[["future_return", "direction"]].to_numpy()
            part[["future_return", "direction"]] = labels[rng.permutation(len(part))]
    model = MODEL_TYPES["xgboost"](ForecastSpec(features, 1, PARAMS, threads=1)).fit(train, valid)
    return float(evaluate_model(model, test, history=valid)["model"]["sign_accuracy"])


def test_shuffled_training_labels_give_a_coin_flip(dataset: tuple[pd.DataFrame, list[str]]) -> None:
    frame, features = dataset
    assert abs(accuracy(frame, features, shuffle_seed=3) - 0.5) <= 0.03


def test_a_feature_peeking_one_candle_ahead_is_caught(dataset: tuple[pd.DataFrame, list[str]]) -> None:
    frame, features = dataset
    leaky = frame.assign(peek=frame.groupby("symbol")["ret_1"].shift(-1).fillna(0.0))
    honest = accuracy(frame, features)
    peeking = accuracy(leaky, [*features, "peek"])
    assert peeking > max(honest, 0.5) + 0.2, (honest, peeking)
