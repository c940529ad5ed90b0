"""Every endpoint: success, missing and wrong token, bad input (422 naming the field), unknown id (404)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from app.api import create_app
from app.bootstrap import bootstrap
from app.core.db.models import Event, ModelRegistry, PredictionLog, RetrainingJob
from app.core.dispatch import InlineDispatcher
from app.core.settings import Settings
from app.operations.alerts import alert_id
from app.retraining.datasets import dataset_spec
from app.retraining.spec import DataSelection
from tests.api_fixtures import TOKEN_HEADER, seed_clm_state, synthetic_candles, train_naive

WRONG = {"Authorization": "Bearer not-the-token"}
FAILED_JOB_ALERT = alert_id("retraining_failed:RTN-20260102-001")  # the seeded failed job's alert
META_STATE = {
    "market_regime": "TRENDING",
    "volatility_level": "LOW",
    "liquidity_level": "HIGH",
    "recent_performance": "GOOD",
}
SIZING_STATE = {
    "market_regime": "RANGING",
    "signal_confidence": 0.7,
    "portfolio_exposure": 0.1,
    "recent_winrate": 0.5,
    "volatility": 1.2,
}

# (method, path, body) of every state-changing call, with a body that is valid.
GUARDED: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/jobs/retraining", {"kind": "partial", "model_types": ["naive"]}),
    ("POST", "/api/jobs/RTN-20260103-001/cancel", {}),
    ("POST", "/api/models/xgboost_v1/retire", {"reason": "old"}),
    ("POST", "/api/model-types/xgboost/promote", {}),
    ("POST", "/api/model-types/xgboost/rollback", {"version": "1"}),
    ("PATCH", "/api/policy", {"patch": {"clm_config": {"schedule_interval_days": 3}}}),
    ("POST", "/api/outcomes", {"trade_id": "T-1", "pnl_pct": 1.5, "duration_hours": 2.0}),
    ("POST", "/api/predictions", {"symbol": "BTC/USDT", "model_type": "naive"}),
    ("POST", "/api/rl/meta_strategy/reset", {}),
    ("POST", "/api/rl/meta-strategy/decision", {"state": META_STATE}),
    ("POST", "/api/rl/position-sizing/decision", {"state": SIZING_STATE, "balance_usd": 10_000}),
    ("POST", "/api/drift/check", None),
    ("POST", "/api/clm/resume-trading", {}),
    ("POST", f"/api/alerts/{FAILED_JOB_ALERT}/ack", {"by": "alice"}),
]

# (method, path, body, field named in the 422)
BAD_INPUT: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/jobs?limit=0", None, "query.limit"),
    ("GET", "/api/jobs?status=sleeping", None, "query.status"),
    ("GET", "/api/models?status=ALIVE", None, "query.status"),
    ("GET", "/api/models?bogus=1", None, "query.bogus"),
    ("GET", "/api/drift/events?severity=extreme", None, "query.severity"),
    ("POST", "/api/jobs/retraining", {"kind": "partial"}, "body"),
    ("POST", "/api/jobs/retraining", {"kind": "partial", "model_types": ["gpt"]}, "body.model_types"),
    ("POST", "/api/jobs/retraining", {"kind": "weekly"}, "body.kind"),
    ("POST", "/api/jobs/retraining", [1, 2], "body"),
    ("POST", "/api/jobs/RTN-20260103-001/cancel", {"reason": ""}, "body.reason"),
    ("POST", "/api/models/xgboost_v1/retire", {}, "body.reason"),
    ("POST", "/api/model-types/xgboost/promote", {"why": "x"}, "body.why"),
    ("POST", "/api/model-types/xgboost/rollback", {"version": "../../etc"}, "body.version"),
    ("PATCH", "/api/policy", {"patch": {"clm_config": {"schedule_interval_days": -1}}}, "body.patch.clm_config"),
    ("PATCH", "/api/policy", {"patch": {"no_such_section": {}}}, "body.patch.no_such_section"),
    ("PATCH", "/api/policy", {"patch": {"data": {"timeframe": "banana"}}}, "body.patch.data.timeframe"),
    ("PATCH", "/api/policy", {"patch": {"training": {"model_types": ["evil"]}}}, "body.patch.training.model_types.0"),
    ("PATCH", "/api/policy", {"patch": {"data": {"symbols": ["../../etc/passwd"]}}}, "body.patch.data.symbols.0"),
    ("POST", "/api/outcomes", {"trade_id": "T-1", "pnl_pct": 1.0}, "body.duration_hours"),
    ("POST", "/api/outcomes", {"trade_id": "T-1", "pnl_pct": "lots", "duration_hours": 1}, "body.pnl_pct"),
    ("POST", "/api/predictions", {"symbol": "BTC USDT"}, "body.symbol"),
    ("POST", "/api/predictions", {"symbol": "BTC/USDT", "model_type": "gpt"}, "body.model_type"),
    ("POST", "/api/predictions", {"symbol": "BTC/USDT", "candles": [{"timestamp": 1, "open": -1}]}, "body.candles.0"),
    ("POST", "/api/rl/meta_strategy/reset", {"reason": ""}, "body.reason"),
    (
        "POST",
        "/api/rl/meta-strategy/decision",
        {"state": META_STATE | {"market_regime": "BULL"}},
        "body.state.market_regime",
    ),
    ("POST", "/api/rl/meta-strategy/decision", {}, "body.state"),
    ("POST", "/api/rl/position-sizing/decision", {"state": SIZING_STATE, "balance_usd": -5}, "body.balance_usd"),
    ("POST", "/api/rl/position-sizing/decision", {"state": SIZING_STATE, "balance_usd": 1e30}, "body.balance_usd"),
    (
        "POST",
        "/api/rl/position-sizing/decision",
        {"state": SIZING_STATE | {"signal_confidence": 2}, "balance_usd": 1},
        "body.state.signal_confidence",
    ),
    (
        "POST",
        "/api/outcomes",
        {"trade_id": "T-1", "pnl_pct": 1.0, "duration_hours": 1, "meta_decision_id": "meta-nope"},
        "body.meta_decision_id",
    ),
    ("POST", "/api/clm/resume-trading", {"reason": 7}, "body.reason"),
    ("GET", "/api/shadow/xgboost_v3?min_samples=0", None, "query.min_samples"),
    ("POST", f"/api/alerts/{FAILED_JOB_ALERT}/ack", {"by": ""}, "body.by"),
    ("POST", f"/api/alerts/{FAILED_JOB_ALERT}/ack", {"who": "bob"}, "body.who"),
    ("POST", "/api/jobs/retraining", {"kind": "full", "data": {"source": "files"}}, "body.data.source"),
    (
        "POST",
        "/api/jobs/retraining",
        {"data": {"start": "2026-01-02T00:00:00", "end": "2026-01-01T00:00:00"}},
        "body.data",
    ),
]

UNKNOWN: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/jobs/RTN-19990101-001", None),
    ("GET", "/api/models/xgboost_v99", None),
    ("POST", "/api/jobs/RTN-19990101-001/cancel", {}),
    ("POST", "/api/models/xgboost_v99/retire", {"reason": "x"}),
    ("POST", "/api/model-types/gpt/promote", {}),
    ("POST", "/api/model-types/gpt/rollback", {"version": "1"}),
    ("POST", "/api/model-types/xgboost/rollback", {"version": "42"}),
    ("GET", "/api/shadow/xgboost_v99", None),
    ("POST", "/api/alerts/0123456789ab/ack", {}),
    ("POST", "/api/rl/no_such_agent/reset", {}),
]


@pytest.fixture
def client(sqlite_container):
    seed_clm_state(sqlite_container)
    return create_app(sqlite_container).test_client()


def _call(client, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
    return client.open(path, method=method, json=body, headers=headers or {})


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
def test_state_changes_need_the_token(client, method, path, body) -> None:
    missing = _call(client, method, path, body)
    assert missing.status_code == 401 and missing.is_json
    assert "bearer" in missing.get_json()["error"]
    wrong = _call(client, method, path, body, WRONG)
    assert wrong.status_code == 403 and wrong.get_json()["error"] == "invalid bearer token"


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_INPUT)
def test_bad_input_is_422_naming_the_field(client, method, path, body, field) -> None:
    response = _call(client, method, path, body, TOKEN_HEADER)
    assert response.status_code == 422, response.get_json()
    details = response.get_json()["details"]
    assert any(d["field"].startswith(field) and d["reason"] for d in details), details


@pytest.mark.parametrize(("method", "path", "body"), UNKNOWN)
def test_unknown_ids_are_404(client, method, path, body) -> None:
    response = _call(client, method, path, body, TOKEN_HEADER)
    assert response.status_code == 404 and response.is_json
    assert "not found" in response.get_json()["error"]


def test_reads_list_and_filter(client) -> None:
    jobs = client.get("/api/jobs").get_json()["jobs"]
    assert [j["job_id"] for j in jobs] == ["RTN-20260103-001", "RTN-20260102-001", "RTN-20260101-001"]
    failed = client.get("/api/jobs?status=failed").get_json()["jobs"]
    assert [j["job_id"] for j in failed] == ["RTN-20260102-001"] and "TimeoutError" in failed[0]["error_message"]
    job = client.get("/api/jobs/RTN-20260103-001").get_json()
    assert job["status"] == "running" and job["progress_pct"] == 40.0
    models = client.get("/api/models?model_type=xgboost&status=SHADOW").get_json()["models"]
    assert [m["model_id"] for m in models] == ["xgboost_v3"]
    model = client.get("/api/models/xgboost_v2").get_json()
    assert model["status"] == "ACTIVE" and model["metrics"]["test"]["sharpe"] == 1.2
    drift = client.get("/api/drift/events?severity=critical").get_json()["events"]
    assert [e["feature_name"] for e in drift] == ["volume_z_48"]
    agents = client.get("/api/rl").get_json()["agents"]
    assert {a["rl_type"]: a["states"] for a in agents} == {"meta_strategy": 7, "position_sizing": 11}
    assert client.get("/api/policy").get_json()["policy"]["clm_config"]["schedule_interval_days"] == 7


def test_clm_status_reads_every_part(client) -> None:
    status = client.get("/api/clm/status").get_json()
    assert status["retraining"]["state"] == "RUNNING"
    assert status["retraining"]["last"]["job_id"] == "RTN-20260102-001"
    assert status["models"]["xgboost"]["active"]["version"] == "2"
    assert status["models"]["xgboost"]["shadow"]["version"] == "3"
    shadow = status["shadow_tests"][0]
    assert shadow["samples"] == 40 and shadow["target_samples"] == 1000
    # shadow calls 1 when i % 3 else -1 and the return has the sign of i % 3: it is always right.
    assert shadow["shadow_winrate"] == 1.0 and 0 < shadow["active_winrate"] < 1
    assert status["drift"]["worst_severity"] == "critical"
    names = {a["name"] for a in status["alerts"]}
    assert {"retraining_failed", "drift_critical", "drift_high"} <= names
    alerts = client.get("/api/alerts").get_json()["alerts"]
    assert [a["severity"] for a in alerts] == ["critical", "critical", "warning"]
    assert alerts[0]["key"] and alerts[0]["message"] and alerts[0]["since"]


def test_trigger_retraining_stores_the_job_and_starts_the_canvas(client, sqlite_container) -> None:
    response = client.post(
        "/api/jobs/retraining",
        json={"kind": "partial", "model_types": ["naive"], "reason": "api"},
        headers=TOKEN_HEADER,
    )
    assert response.status_code == 202
    job_id = response.get_json()["job_id"]
    assert response.get_json()["url"] == f"/api/jobs/{job_id}"
    assert sqlite_container.dispatcher.started[-1][0] == job_id
    with sqlite_container.session() as s:
        row = s.get(RetrainingJob, job_id)
        assert row is not None and row.job_type == "partial" and row.model_types == ["naive"]
    assert client.get(f"/api/jobs/{job_id}").get_json()["trigger_reason"] == "api"


def test_cancel_running_job_then_409_on_a_closed_one(client) -> None:
    response = client.post("/api/jobs/RTN-20260103-001/cancel", json={"reason": "operator"}, headers=TOKEN_HEADER)
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    done = client.post("/api/jobs/RTN-20260101-001/cancel", json={}, headers=TOKEN_HEADER)
    assert done.status_code == 409 and "completed" in done.get_json()["error"]


def test_promote_retire_rollback(client, sqlite_container) -> None:
    promoted = client.post("/api/model-types/xgboost/promote", json={}, headers=TOKEN_HEADER)
    assert promoted.status_code == 200 and promoted.get_json()["model_id"] == "xgboost_v3"
    again = client.post("/api/model-types/xgboost/promote", json={}, headers=TOKEN_HEADER)
    assert again.status_code == 409 and "no SHADOW" in again.get_json()["error"]
    rolled = client.post("/api/model-types/xgboost/rollback", json={"version": "2"}, headers=TOKEN_HEADER)
    assert rolled.status_code == 200 and rolled.get_json()["status"] == "ACTIVE"
    unconfirmed = client.post("/api/models/lightgbm_v1/retire", json={"reason": "bad"}, headers=TOKEN_HEADER)
    assert unconfirmed.status_code == 409 and "confirm" in unconfirmed.get_json()["error"]
    body = {"reason": "bad", "confirm": True}
    retired = client.post("/api/models/lightgbm_v1/retire", json=body, headers=TOKEN_HEADER)
    assert retired.status_code == 200 and retired.get_json()["status"] == "RETIRED"
    with sqlite_container.session() as s:
        statuses = dict(s.execute(select(ModelRegistry.model_id, ModelRegistry.status)).all())
    assert statuses == {
        "xgboost_v1": "RETIRED",
        "xgboost_v2": "ACTIVE",
        "xgboost_v3": "RETIRED",
        "lightgbm_v1": "RETIRED",
    }


def test_policy_patch_stores_a_new_version(client) -> None:
    response = client.patch(
        "/api/policy", json={"patch": {"clm_config": {"schedule_interval_days": 3}}, "comment": "faster"},
        headers=TOKEN_HEADER,
    )  # fmt: skip
    assert response.status_code == 200
    assert response.get_json()["version"] >= 1
    assert client.get("/api/policy").get_json()["policy"]["clm_config"]["schedule_interval_days"] == 3


def test_outcome_is_an_event_in_the_outbox(client, sqlite_container) -> None:
    body = {"trade_id": "T-42", "pnl_pct": -0.8, "duration_hours": 5.5, "side": "SHORT", "symbol": "ETH/USDT"}
    response = client.post("/api/outcomes", json=body, headers=TOKEN_HEADER)
    assert response.status_code == 202
    with sqlite_container.session() as s:
        event = s.get(Event, response.get_json()["event_id"])
        assert event is not None and event.topic == "execution.trade.closed"
        assert event.payload == body | {"hit_tp": False, "hit_sl": False, "max_drawdown_pct": 0.0}


def test_no_stack_trace_on_a_server_error(tmp_path) -> None:
    # A database without the schema: every query fails inside SQLAlchemy.
    settings = Settings(DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite'}", ARTIFACT_ROOT=str(tmp_path / "a"))
    response = create_app(bootstrap(settings, InlineDispatcher())).test_client().get("/api/jobs")
    assert response.status_code == 500 and response.is_json
    assert "run migrations" in response.get_json()["error"]  # the missing table's cause, not "internal error"
    assert b"Traceback" not in response.data and b"no such table" not in response.data


def test_shadow_evaluation_of_the_seeded_test(client) -> None:
    body = client.get("/api/shadow/xgboost_v3?min_samples=30").get_json()
    assert body["total_samples"] == 40 and body["active_model_id"] == "xgboost_v2"
    assert body["shadow_metrics"]["hit_rate"] > body["active_metrics"]["hit_rate"]
    assert body["recommendation"] in {"PROMOTE", "CONTINUE_TESTING", "REJECT"}
    default = client.get("/api/shadow/xgboost_v3").get_json()
    assert default["recommendation"] == "CONTINUE_TESTING" and "1000 needed" in " ".join(default["reasons"])


def test_shadow_evaluation_of_an_active_model_is_a_conflict_naming_its_challengers(client) -> None:
    response = client.get("/api/shadow/xgboost_v2")
    assert response.status_code == 409
    body = response.get_json()
    assert "'xgboost_v2' is ACTIVE" in body["error"] and "baseline" in body["error"]
    assert "/api/shadow/xgboost_v3" in body["error"]
    assert body["details"] == {"model_id": "xgboost_v2", "status": "ACTIVE", "shadow_challengers": ["xgboost_v3"]}
    lonely = client.get("/api/shadow/lightgbm_v1")
    assert lonely.status_code == 409 and lonely.get_json()["details"]["shadow_challengers"] == []
    assert "no lightgbm model is in shadow testing" in lonely.get_json()["error"]
    # A retired model's shadow history is still readable (it answers an evaluation, not a conflict).
    assert client.get("/api/shadow/xgboost_v1").status_code == 200
    doc = client.get("/openapi.json").get_json()["paths"]["/api/shadow/{model_id}"]["get"]
    assert "409" in doc["responses"] and "ACTIVE" in doc["description"]


def test_rl_reset_archives_and_starts_a_new_version(client, sqlite_container) -> None:
    response = client.post("/api/rl/position_sizing/reset", json={"reason": "regime"}, headers=TOKEN_HEADER)
    assert response.status_code == 200
    body = response.get_json()
    assert body["old_version"] == 35 and body["new_version"] == 36
    agents = {a["rl_type"]: a for a in client.get("/api/rl").get_json()["agents"]}
    assert agents["position_sizing"]["version"] == 36 and agents["position_sizing"]["states"] == 0
    with sqlite_container.session() as s:
        topics = [e.topic for e in s.scalars(select(Event).order_by(Event.id))]
    assert "rl.sizing.reset" in topics and "alert.warning" in topics


def test_predictions_from_a_trained_model(sqlite_container) -> None:
    model_id = train_naive(sqlite_container)
    client = create_app(sqlite_container).test_client()
    no_model = client.post("/api/predictions", json={"symbol": "BTC/USDT"}, headers=TOKEN_HEADER)
    assert no_model.status_code == 409 and "no ACTIVE model" in no_model.get_json()["error"]
    body = {"symbol": "BTC/USDT", "model_type": "naive", "candles": synthetic_candles()}
    response = client.post("/api/predictions", json=body, headers=TOKEN_HEADER)
    assert response.status_code == 200, response.get_json()
    prediction = response.get_json()
    assert prediction["model_id"] == model_id and prediction["direction"] in (-1, 0, 1)
    assert 0 <= prediction["confidence"] <= 1 and prediction["prediction_id"] >= 1
    few = client.post("/api/predictions", json=body | {"candles": body["candles"][:20]}, headers=TOKEN_HEADER)
    assert few.status_code == 422 and few.get_json()["details"][0]["field"] == "body.candles"
    assert "too few" in few.get_json()["details"][0]["reason"]
    with sqlite_container.session() as s:
        assert s.get(PredictionLog, prediction["prediction_id"]).model_id == model_id
    candles = synthetic_candles()
    broken = {
        "high below low": [c | {"high": c["low"] * 0.5} if i == 150 else c for i, c in enumerate(candles)],
        "time goes back": [*candles[:150], candles[151], candles[150], *candles[152:]],
        "conflicting duplicate": [
            *candles[:150],
            candles[149] | {"close": candles[149]["close"] * 1.01},
            *candles[150:],
        ],
    }
    for what, rows in broken.items():
        bad = client.post("/api/predictions", json=body | {"candles": rows}, headers=TOKEN_HEADER)
        assert bad.status_code == 422, (what, bad.get_json())
        assert bad.get_json()["details"][0]["field"] == "body.candles"
    # The API observes each prediction it served (not the refused ones) in its latency histogram.
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
        for s in family.samples
    }
    served = samples[("clm_prediction_latency_seconds_count", (("model_type", "naive"),))]
    assert served == 1.0
    assert samples[("clm_prediction_latency_seconds_sum", (("model_type", "naive"),))] == pytest.approx(
        prediction["latency_ms"] / 1000.0
    )


def test_drift_check_is_sent_to_a_worker(client, sqlite_container) -> None:
    response = client.post("/api/drift/check", headers=TOKEN_HEADER)
    assert response.status_code == 202 and response.get_json()["task"] == "tasks.drift.run_drift_check"
    assert sqlite_container.dispatcher.started[-1][0] == "tasks.drift.run_drift_check"


def test_trading_halt_is_shown_and_lifted(client, sqlite_container) -> None:
    from app.clm.manager import ContinuousLearningManager

    ContinuousLearningManager(sqlite_container).halt_trading("CRITICAL drift on volume_z_48")
    status = client.get("/api/clm/status").get_json()
    assert status["trading_halted"]["halted"] is True and status["manager"]["trading_halted"] is True
    assert "TRADING HALTED</b> CRITICAL drift on volume_z_48" in client.get("/").get_data(as_text=True)
    resumed = client.post("/api/clm/resume-trading", json={"reason": "checked"}, headers=TOKEN_HEADER)
    assert resumed.status_code == 200 and resumed.get_json()["trading_halted"]["halted"] is False
    assert "TRADING HALTED" not in client.get("/").get_data(as_text=True)


def test_oversized_and_wrong_method_are_json_errors(client) -> None:
    huge = {"trade_id": "T-1", "pnl_pct": 1.0, "duration_hours": 1.0, "meta_state": {"x": "y" * 5_000_000}}
    too_big = client.post("/api/outcomes", json=huge, headers=TOKEN_HEADER)
    assert too_big.status_code == 413 and too_big.is_json
    wrong = client.delete("/api/jobs", headers=TOKEN_HEADER)
    assert wrong.status_code == 405 and wrong.is_json and wrong.get_json()["status"] == 405


def test_a_deeply_nested_body_is_a_json_4xx_and_authentication_comes_first(client) -> None:
    """Issue 18, defect 3: 1,000 levels of brackets raised RecursionError in the NUL guard, before auth (500)."""
    deep = '{"patch": ' + "[" * 1000 + "]" * 1000 + "}"
    headers = {"Content-Type": "application/json"}
    anonymous = client.patch("/api/policy", data=deep, headers=headers)
    assert anonymous.status_code == 401 and anonymous.is_json
    for depth in (65, 1000, 100_000):
        body = '{"patch": {"a": ' + "[" * depth + "]" * depth + "}}"
        for method, path in (("PATCH", "/api/policy"), ("POST", "/api/outcomes"), ("POST", "/api/predictions")):
            response = client.open(path, method=method, data=body, headers={**headers, **TOKEN_HEADER})
            assert response.status_code == 400 and response.is_json, (path, depth, response.status_code)
            assert response.get_json()["details"] == [{"field": "body", "reason": "nested deeper than 64 levels"}]
    shallow = {"patch": {"clm_config": {"drift_detection": {"enabled": True}}}}
    assert client.patch("/api/policy", json=shallow, headers=TOKEN_HEADER).status_code == 200


def test_unauthenticated_request_with_a_nul_is_401(client) -> None:
    """Issue 18, defect 11: the NUL guard answered 422 before the token was checked."""
    body = {"patch": {}, "comment": "a\x00b"}
    assert client.patch("/api/policy", json=body).status_code == 401
    assert client.patch("/api/policy", json=body, headers=WRONG).status_code == 403
    assert client.patch("/api/policy", json=body, headers=TOKEN_HEADER).status_code == 422
    assert client.post("/api/models/a%00b/retire", json={"reason": "x"}).status_code == 401


def test_405_names_the_allowed_methods(client) -> None:
    response = client.delete("/api/policy", headers=TOKEN_HEADER)
    assert response.status_code == 405 and response.is_json
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PATCH"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"end": "0001-01-02T00:00:00"}, "body.data.end"),
        ({"start": "0001-01-01T00:00:00+05:00"}, "body.data.start"),
        ({"end": "9999-12-31T23:59:59-05:00"}, "body.data.end"),
        ({"start": "1969-12-31T23:00:00"}, "body.data.start"),
    ],
)
def test_retraining_dates_out_of_range_are_422_naming_the_field(client, data, field) -> None:
    """Issue 18, defect 10: "end": "0001-01-02T00:00:00" was a 500 (OverflowError)."""
    response = client.post("/api/jobs/retraining", json={"data": data}, headers=TOKEN_HEADER)
    assert response.status_code == 422, response.get_json()
    assert [d["field"] for d in response.get_json()["details"]] == [field]


def test_retraining_dates_with_an_offset_are_converted_to_utc(client, sqlite_container) -> None:
    """Issue 18, defect 10: "+05:00" was dropped, so 05:00+05:00 was read as 05:00 UTC."""
    data = {"start": "2025-06-01T05:00:00+05:00", "end": "2025-07-01T00:00:00-02:00"}
    response = client.post("/api/jobs/retraining", json={"data": data, "force": True}, headers=TOKEN_HEADER)
    assert response.status_code == 202, response.get_json()
    spec = sqlite_container.dispatcher.started[-1][2]  # (force: the fixture's job is still cooling down)
    assert (spec["start"], spec["end"]) == ("2025-06-01T00:00:00", "2025-07-01T02:00:00")
    selection = DataSelection(start="2025-06-01T05:00:00+05:00", end="2025-07-01T00:00:00Z")
    built = dataset_spec(sqlite_container.policy_store.get(), selection)
    assert (built.start, built.end) == (datetime(2025, 6, 1), datetime(2025, 7, 1))


def test_datetimes_in_answers_carry_their_utc_offset(client) -> None:
    """Issue 18, defect 11: naive times broke OpenAPI's `date-time` (which requires an offset)."""
    job = client.get("/api/jobs").get_json()["jobs"][0]
    model = client.get("/api/models").get_json()["models"][0]
    for value in (job["started_at"], model["created_at"]):
        assert value.endswith("Z") or value.endswith("+00:00"), value
        assert datetime.fromisoformat(value).utcoffset() == timedelta(0)
