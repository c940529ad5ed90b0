"""RL decisions over HTTP: recorded, applied once by the outcome that names them, refused while halted."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.api import create_app
from app.clm.manager import ContinuousLearningManager
from app.core.db.models import Event, RLAppliedUpdate, RLDecision, RLQValue
from tests.api_fixtures import TOKEN_HEADER

META_STATE = {
    "market_regime": "TRENDING",
    "volatility_level": "LOW",
    "liquidity_level": "HIGH",
    "recent_performance": "GOOD",
}
SIZING_STATE = {
    "market_regime": "RANGING",
    "signal_confidence": 0.72,
    "portfolio_exposure": 0.1,
    "recent_winrate": 0.55,
    "volatility": 1.2,
}


@pytest.fixture
def client(sqlite_container):
    return create_app(sqlite_container).test_client()


def _meta(client) -> dict:
    response = client.post("/api/rl/meta-strategy/decision", json={"state": META_STATE}, headers=TOKEN_HEADER)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _sizing(client, balance: float = 10_000.0, open_positions: int = 0) -> dict:
    body = {"state": SIZING_STATE, "balance_usd": balance, "open_positions": open_positions}
    response = client.post("/api/rl/position-sizing/decision", json=body, headers=TOKEN_HEADER)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _outcome(client, trade_id: str, **decisions: str):
    body = {"trade_id": trade_id, "pnl_pct": 2.5, "duration_hours": 3.0, "max_drawdown_pct": 0.5, **decisions}
    return client.post("/api/outcomes", json=body, headers=TOKEN_HEADER)


def test_meta_decision_answers_the_choice_and_is_recorded(client, sqlite_container) -> None:
    decision = _meta(client)
    assert decision["strategy"] in decision["q_values"] and len(decision["q_values"]) == 5
    assert decision["version"] >= 1 and 0 <= decision["epsilon"] <= 1 and isinstance(decision["explored"], bool)
    assert decision["state_key"] == "TRENDING_LOW_HIGH_GOOD" and decision["trading_halted"] is False
    with sqlite_container.session() as session:
        row = session.get(RLDecision, decision["decision_id"])
        assert row is not None and row.rl_type == "meta_strategy" and row.action == decision["strategy"]
        assert row.version == decision["version"] and row.trade_id is None


def test_sizing_decision_answers_size_leverage_and_clamp(client, sqlite_container) -> None:
    decision = _sizing(client, balance=100.0)  # a small balance: max_risk_pct_per_trade clamps the size
    assert decision["allowed"] is True and 0 < decision["size_usd"] <= decision["proposed_size_usd"]
    assert decision["clamped"] and any(r.startswith("max_risk_pct_per_trade") for r in decision["clamp_reasons"])
    assert decision["risk_mode"] and decision["leverage"] <= decision["proposed_leverage"]
    full = _sizing(client, open_positions=10_000)
    assert full["allowed"] is False and full["size_usd"] == 0 and "max_positions" in full["clamp_reasons"][0]


def test_outcome_naming_decisions_updates_exactly_those_once(client, sqlite_container) -> None:
    meta, sizing = _meta(client), _sizing(client)
    accepted = _outcome(client, "T-100", meta_decision_id=meta["decision_id"], sizing_decision_id=sizing["decision_id"])
    assert accepted.status_code == 202, accepted.get_json()
    event_id = accepted.get_json()["event_id"]
    with sqlite_container.session() as session:
        event = session.get(Event, event_id)
        assert event.payload["meta_state"] == META_STATE and event.payload["meta_action"] == meta["strategy"]
        assert event.payload["sizing_action"] == sizing["action"]
        applied = {r.rl_type: r for r in session.scalars(select(RLAppliedUpdate))}
        assert applied["meta_strategy"].state_key == meta["state_key"]
        assert applied["meta_strategy"].action == meta["strategy"]
        assert applied["position_sizing"].state_key == sizing["state_key"]
        assert applied["position_sizing"].action == sizing["action"]
        q_rows = session.scalars(select(RLQValue)).all()
        assert {(q.rl_type, q.state_key, q.action) for q in q_rows} == {
            ("meta_strategy", meta["state_key"], meta["strategy"]),
            ("position_sizing", sizing["state_key"], sizing["action"]),
        }
        assert session.get(RLDecision, meta["decision_id"]).trade_id == "T-100"

    retry = _outcome(client, "T-100", meta_decision_id=meta["decision_id"], sizing_decision_id=sizing["decision_id"])
    assert retry.status_code == 202 and retry.get_json() == accepted.get_json() | {"replayed": True}

    again = _outcome(client, "T-101", meta_decision_id=meta["decision_id"])
    assert again.status_code == 409 and again.get_json()["details"][0]["field"] == "body.meta_decision_id"
    with sqlite_container.session() as session:
        assert len(session.scalars(select(Event).where(Event.topic == "execution.trade.closed")).all()) == 1
        assert sum(q.visits for q in session.scalars(select(RLQValue))) == 2


def test_bad_decision_ids_change_nothing(client, sqlite_container) -> None:
    meta, sizing = _meta(client), _sizing(client)
    wrong_agent = _outcome(client, "T-1", meta_decision_id=sizing["decision_id"])
    assert wrong_agent.status_code == 422 and wrong_agent.get_json()["details"][0]["field"] == "body.meta_decision_id"
    # one good id and one unknown: neither is claimed
    mixed = _outcome(client, "T-2", meta_decision_id=meta["decision_id"], sizing_decision_id="sizing-nope")
    assert mixed.status_code == 422 and mixed.get_json()["details"][0]["field"] == "body.sizing_decision_id"
    both = client.post(
        "/api/outcomes",
        json={"trade_id": "T-3", "pnl_pct": 1, "duration_hours": 1, "meta_decision_id": meta["decision_id"],
              "meta_state": META_STATE, "meta_action": "breakout"},
        headers=TOKEN_HEADER,
    )  # fmt: skip
    assert both.status_code == 422 and both.get_json()["details"][0]["field"] == "body.meta_decision_id"
    with sqlite_container.session() as session:
        assert session.get(RLDecision, meta["decision_id"]).trade_id is None
        assert session.scalars(select(Event).where(Event.topic == "execution.trade.closed")).all() == []


def test_halt_refuses_every_sizing_and_marks_meta_and_predictions_until_resume(client, sqlite_container) -> None:
    ContinuousLearningManager(sqlite_container).halt_trading("CRITICAL feature drift")
    sizing = _sizing(client)
    assert sizing["allowed"] is False and sizing["size_usd"] == 0 and sizing["trading_halted"] is True
    assert sizing["halt_reason"] == "CRITICAL feature drift" and sizing["halted_since"]
    assert sizing["clamp_reasons"][-1].startswith("trading_halted: CRITICAL feature drift")
    meta = _meta(client)
    assert meta["trading_halted"] is True and meta["strategy"] in meta["q_values"]
    refused = _outcome(client, "T-9", sizing_decision_id=sizing["decision_id"])
    assert refused.status_code == 409 and refused.get_json()["details"][0]["field"] == "body.sizing_decision_id"

    resumed = client.post("/api/clm/resume-trading", json={"reason": "checked"}, headers=TOKEN_HEADER)
    assert resumed.status_code == 200
    after = _sizing(client)
    assert after["allowed"] is True and after["trading_halted"] is False and after["halt_reason"] is None


def test_openapi_describes_both_decisions(client) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ("/api/rl/meta-strategy/decision", "/api/rl/position-sizing/decision"):
        op = paths[path]["post"]
        assert {"200", "401", "403", "422"} <= set(op["responses"]) and op["security"]
