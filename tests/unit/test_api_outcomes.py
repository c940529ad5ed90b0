"""POST /api/outcomes refuses what could never be applied, and closes exactly the pair it names."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from app.api import create_app
from app.core.db.models import Event, ShadowTestResult
from app.core.topics import TradeClosed
from app.operations.alerts import current_alerts
from tests.api_fixtures import TOKEN_HEADER, synthetic_candles, train_naive

TRADE = {"trade_id": "T-1", "pnl_pct": 1.5, "duration_hours": 2.0}
META_STATE = {
    "market_regime": "TRENDING",
    "volatility_level": "HIGH",
    "liquidity_level": "MEDIUM",
    "recent_performance": "GOOD",
}
SIZING_ACTION = "size-1.0_lev-5_tp-balanced_sl-medium"
SIZING_STATE = {
    "market_regime": "TRENDING",
    "signal_confidence": 0.7,
    "portfolio_exposure": 0.2,
    "recent_winrate": 0.5,
    "volatility": 0.02,
}

# (extra keys of the trade, field named in the 422): each was accepted (202) and later went dead.
NEVER_APPLICABLE: list[tuple[dict[str, Any], str]] = [
    ({"meta_state": META_STATE, "meta_action": "yolo"}, "body.meta_action"),
    ({"meta_state": {"foo": 1}, "meta_action": "breakout"}, "body.meta_state"),
    ({"meta_state": META_STATE}, "body.meta_action"),
    (
        {"sizing_state": SIZING_STATE | {"signal_confidence": 7}, "sizing_action": SIZING_ACTION},
        "body.sizing_state.signal_confidence",
    ),
    ({"meta_state": META_STATE | {"market_regime": float("nan")}, "meta_action": "breakout"}, "body.meta_state"),
    ({"meta_state": META_STATE | {"note": float("nan")}, "meta_action": "breakout"}, "body.meta_state.note"),
]


def _events(container) -> int:
    with container.session() as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def _post(client, body: dict[str, Any]):
    # allow_nan: the trading engine's JSON encoder may write NaN; Python's parser reads it.
    data = json.dumps(body, allow_nan=True)
    return client.post("/api/outcomes", data=data, content_type="application/json", headers=TOKEN_HEADER)


@pytest.mark.parametrize(("extra", "field"), NEVER_APPLICABLE)
def test_outcomes_the_agents_cannot_apply_are_422(sqlite_container, extra, field) -> None:
    client = create_app(sqlite_container).test_client()
    response = _post(client, TRADE | extra)
    assert response.status_code == 422, response.get_json()
    details = response.get_json()["details"]
    assert any(d["field"].startswith(field) for d in details), details
    assert _events(sqlite_container) == 0


def test_a_valid_rl_outcome_is_accepted(sqlite_container) -> None:
    client = create_app(sqlite_container).test_client()
    body = TRADE | {"meta_state": META_STATE, "meta_action": "breakout"}
    assert _post(client, body).status_code == 202


def test_dead_events_are_an_alert(sqlite_container) -> None:
    with sqlite_container.session() as session:
        assert not [a for a in current_alerts(session) if a.name == "events_dead"]
        event = sqlite_container.bus.publish(session, TradeClosed(**TRADE), record_only=True)
        session.flush()
        event.status, event.last_error = "dead", "ValueError: execution.trade.closed.meta_action: 'yolo'"
    with sqlite_container.session() as session:
        dead = [a for a in current_alerts(session) if a.name == "events_dead"]
    assert len(dead) == 1 and dead[0].severity == "critical" and "yolo" in dead[0].message


@pytest.fixture
def served(sqlite_container) -> tuple[Any, list[dict[str, Any]]]:
    """Two naive models (ACTIVE, SHADOW) and three predictions of the same candle, each with its pair."""
    train_naive(sqlite_container, seed=7)
    train_naive(sqlite_container, seed=8)
    client = create_app(sqlite_container).test_client()
    body = {"symbol": "BTC/USDT", "model_type": "naive", "candles": synthetic_candles()}
    predictions = []
    for _ in range(3):
        response = client.post("/api/predictions", json=body, headers=TOKEN_HEADER)
        assert response.status_code == 200, response.get_json()
        predictions.append(response.get_json())
    assert len({p["shadow_test_id"] for p in predictions}) == 3 and len({p["timestamp"] for p in predictions}) == 1
    return client, predictions


def _closed(container) -> dict[int, str | None]:
    with container.session() as session:
        return {r.id: r.trade_id for r in session.scalars(select(ShadowTestResult)) if r.actual_outcome is not None}


def test_an_outcome_closes_the_pair_of_its_prediction_and_no_other(served, sqlite_container) -> None:
    client, predictions = served
    first = predictions[0]
    response = _post(client, TRADE | {"prediction_id": first["prediction_id"], "side": "LONG"})
    assert response.status_code == 202
    assert _closed(sqlite_container) == {first["shadow_test_id"]: "T-1"}


def test_an_outcome_closes_the_pair_it_names_by_shadow_test_id(served, sqlite_container) -> None:
    client, predictions = served
    middle = predictions[1]
    response = _post(client, TRADE | {"trade_id": "T-2", "shadow_test_id": middle["shadow_test_id"], "side": "LONG"})
    assert response.status_code == 202, response.get_json()
    assert _closed(sqlite_container) == {middle["shadow_test_id"]: "T-2"}


@pytest.mark.parametrize(
    ("ids", "field"),
    [
        ({"prediction_id": 99999}, "body.prediction_id"),
        ({"shadow_test_id": 99999}, "body.shadow_test_id"),
        ({"prediction_id": "first", "shadow_test_id": "last"}, "body.shadow_test_id"),
        # No row has an id past 2**63 - 1; SQLite refused the lookup (OverflowError: a 500, found by the fuzz test).
        ({"shadow_test_id": 2**63}, "body.shadow_test_id"),
        ({"prediction_ids": [1, 2**64]}, "body.prediction_ids.1"),
    ],
)
def test_an_unknown_or_contradictory_id_is_422_and_closes_nothing(served, sqlite_container, ids, field) -> None:
    client, predictions = served
    named = {key: predictions[0 if value == "first" else -1][key] if isinstance(value, str) else value
             for key, value in ids.items()}  # fmt: skip
    events = _events(sqlite_container)
    response = _post(client, TRADE | {"symbol": "BTC/USDT", "side": "LONG"} | named)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"][0]["field"] == field
    assert _events(sqlite_container) == events and _closed(sqlite_container) == {}
