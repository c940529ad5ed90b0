"""The client library (clients/python): its types agree with the API's, every method in-process, retries, timeouts."""

from __future__ import annotations

import httpx
import pytest
from pydantic import BaseModel
from quantum_trader_client import (
    CLMClient,
    Conflict,
    MetaStrategyState,
    SizingState,
    TimedOut,
    TradeOutcome,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from quantum_trader_client import models as client_models
from sqlalchemy import select

from app.api import create_app
from app.api import schemas as api
from app.clm.manager import ContinuousLearningManager
from app.core.db.models import Event
from app.model_registry import ModelRegistry
from tests.api_fixtures import synthetic_candles, train_naive
from tests.conftest import API_TOKEN

# client model <-> the API's model of the same body
PAIRS: list[tuple[type[BaseModel], type[BaseModel]]] = [
    (client_models.Candle, api.CandleIn),
    (client_models.PredictionRequest, api.PredictionRequest),
    (client_models.Prediction, api.PredictionOut),
    (client_models.MetaStrategyState, api.MetaStrategyStateIn),
    (client_models.MetaDecisionRequest, api.MetaDecisionRequest),
    (client_models.MetaDecision, api.MetaDecisionOut),
    (client_models.SizingState, api.SizingStateIn),
    (client_models.SizingDecisionRequest, api.SizingDecisionRequest),
    (client_models.SizingDecision, api.SizingDecisionOut),
    (client_models.TradeOutcome, api.TradeOutcome),
    (client_models.OutcomeAccepted, api.OutcomeAccepted),
    (client_models.RetrainingRequest, api.RetrainingRequest),
    (client_models.JobAccepted, api.JobAccepted),
    (client_models.Job, api.Job),
    (client_models.ResumeRequest, api.ResumeRequest),
    (client_models.ClmStatus, api.ClmStatus),
]


def _shape(model: type[BaseModel], mode: str) -> dict[str, tuple[bool, str]]:
    """field -> (required, JSON type(s)), as OpenAPI describes it."""
    schema = model.model_json_schema(mode=mode)  # type: ignore[arg-type]
    required = set(schema.get("required", []))

    def kind(prop: dict) -> str:
        if "anyOf" in prop:
            return "|".join(sorted(kind(p) for p in prop["anyOf"]))
        if "$ref" in prop:
            return "object"
        return str(prop.get("type", "any"))

    return {name: (name in required, kind(prop)) for name, prop in schema.get("properties", {}).items()}


@pytest.mark.parametrize(("client_model", "api_model"), PAIRS, ids=lambda m: m.__name__)
def test_client_types_agree_with_the_api(client_model, api_model) -> None:
    is_response = issubclass(client_model, client_models._Response)
    mode = "serialization" if is_response else "validation"
    assert _shape(client_model, mode) == _shape(api_model, mode)


@pytest.fixture
def app(sqlite_container):
    return create_app(sqlite_container)


@pytest.fixture
def clm(app):
    with CLMClient("http://clm", API_TOKEN, transport=httpx.WSGITransport(app=app), backoff_s=0.01) as client:
        yield client


META = MetaStrategyState(
    market_regime="RANGING", volatility_level="LOW", liquidity_level="HIGH", recent_performance="GOOD"
)
SIZING = SizingState(
    market_regime="RANGING", signal_confidence=0.8, portfolio_exposure=0.0, recent_winrate=0.5, volatility=1.0
)


def test_every_method_in_process(clm, sqlite_container) -> None:
    train_naive(sqlite_container)
    prediction = clm.predict("BTC/USDT", "naive", [client_models.Candle(**c) for c in synthetic_candles()])
    assert prediction.model_type == "naive" and prediction.trading_halted is False
    assert prediction.abstained is False and prediction.abstain_reason is None  # min_confidence 0: never
    meta = clm.meta_decision(META)
    sizing = clm.sizing_decision(SIZING, balance_usd=5_000)
    assert meta.strategy in meta.q_values and sizing.allowed
    outcome = TradeOutcome(
        trade_id="C-1", pnl_pct=1.0, duration_hours=2, meta_decision_id=meta.decision_id,
        sizing_decision_id=sizing.decision_id, prediction_id=prediction.prediction_id,
    )  # fmt: skip
    accepted = clm.report_trade(outcome)
    assert accepted.topic == "execution.trade.closed" and not accepted.replayed
    assert clm.report_trade(outcome).replayed  # the trade id makes the retry harmless
    with pytest.raises(Conflict) as applied:
        clm.report_trade(outcome.model_copy(update={"trade_id": "C-2"}))
    assert applied.value.details[0]["field"] == "body.meta_decision_id"

    ContinuousLearningManager(sqlite_container).halt_trading("CRITICAL drift")
    assert clm.status().trading_halted["halted"] is True
    assert clm.sizing_decision(SIZING, balance_usd=5_000).allowed is False
    assert clm.resume_trading("checked").trading_halted["halted"] is False
    job = clm.trigger_retraining(client_models.RetrainingRequest(kind="partial", model_types=["naive"]))
    assert clm.job(job.job_id).job_id == job.job_id


def _signal_events(container) -> list[dict]:  # type: ignore[no-untyped-def]
    with container.session() as session:
        rows = session.scalars(select(Event).where(Event.topic == "ai.signal.generated").order_by(Event.id))
        return [dict(e.payload) for e in rows]


def test_an_abstention_says_so_in_the_answer_the_event_and_the_client(clm, sqlite_container) -> None:
    candles = [client_models.Candle(**c) for c in synthetic_candles()]
    # No naive model passed the baseline gate: an explicit abstention with the gate's reason.
    stored = sqlite_container.artifacts.put_bytes("models/naive/rejected/forecaster.json", b"{}")
    gate = {"passed": False, "reason": "fails the baseline gate after fees: Sharpe -0.30 vs buy_and_hold"}
    ModelRegistry(sqlite_container).register_model(
        {"model_type": "naive", "file_path": stored.path, "sha256": stored.sha256, "metrics": {"gate": gate}}
    )
    refused = clm.predict("BTC/USDT", "naive", candles)
    assert refused.abstained is True and refused.direction == 0 and refused.confidence == 0.0
    assert refused.model_id == "" and refused.prediction_id == 0
    assert refused.abstain_reason is not None
    assert refused.abstain_reason.startswith("no naive model passed the baseline gate; the last: ")
    assert refused.abstain_reason.endswith("Sharpe -0.30 vs buy_and_hold")

    # A model that answers, under the policy's confidence threshold: direction 0, its confidence, the reason.
    sqlite_container.policy_store.update({"training": {"min_confidence": 0.999}}, author="test")
    model_id = train_naive(sqlite_container)
    served = clm.predict("BTC/USDT", "naive", candles)
    assert served.model_id == model_id and served.prediction_id >= 1
    assert served.abstained is True and served.direction == 0 and 0 < served.confidence < 0.999
    assert served.abstain_reason == f"confidence {served.confidence:.2f} below min_confidence 0.999"
    event = _signal_events(sqlite_container)[-1]
    assert event["prediction_id"] == served.prediction_id
    assert event["abstained"] is True and event["abstain_reason"] == served.abstain_reason


def test_errors_are_typed_and_carry_the_api_body(app, clm) -> None:
    with pytest.raises(ValidationFailed) as bad:
        clm.sizing_decision(SIZING, balance_usd=-1)
    assert bad.value.status == 422 and bad.value.details[0]["field"] == "body.balance_usd"
    wrong = CLMClient("http://clm", "wrong", transport=httpx.WSGITransport(app=app))
    with wrong, pytest.raises(Unauthorized) as denied:
        wrong.meta_decision(META)
    assert denied.value.status == 403 and denied.value.body["error"] == "invalid bearer token"


def _mock(handler) -> CLMClient:
    return CLMClient("http://clm", API_TOKEN, transport=httpx.MockTransport(handler), retries=2, backoff_s=0.001)


def test_reads_and_keyed_writes_retry_503_other_writes_do_not() -> None:
    calls: list[str] = []

    def unavailable(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(503, json={"error": "database unavailable", "status": 503}, headers={"Retry-After": "0"})

    with _mock(unavailable) as clm:
        with pytest.raises(Unavailable) as status:
            clm.status()
        assert status.value.attempts == 3 and status.value.body["error"] == "database unavailable"
        with pytest.raises(Unavailable):
            clm.report_trade(TradeOutcome(trade_id="T-1", pnl_pct=1, duration_hours=1))
        with pytest.raises(Unavailable) as once:
            clm.meta_decision(META)
        assert once.value.attempts == 1
    assert calls.count("/api/clm/status") == 3 and calls.count("/api/outcomes") == 3
    assert calls.count("/api/rl/meta-strategy/decision") == 1


def test_a_503_then_success_is_retried_and_a_timeout_is_typed() -> None:
    answers = iter([httpx.Response(503, json={"error": "busy", "status": 503})])

    def flaky(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or httpx.Response(200, json={"job_id": "J", "status": "running", "url": "/x"} | {
            "job_type": "full", "trigger_reason": "t", "stage": None, "progress_pct": 0.0,
            "started_at": "2026-01-01T00:00:00", "completed_at": None, "duration_seconds": None,
            "model_types": [], "models_trained": {}, "error_message": None, "forced_over": None,
            "training_window": None,
        })  # fmt: skip

    with _mock(flaky) as clm:
        assert clm.job("J").status == "running"

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with _mock(slow) as clm, pytest.raises(TimedOut) as timed_out:
        clm.status()
    assert timed_out.value.attempts == 3
