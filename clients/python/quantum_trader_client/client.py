"""`CLMClient`: every call a trading engine or an operator makes, with timeouts, safe retries and typed errors."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from quantum_trader_client.errors import ClientError, TimedOut, Unavailable, error_for
from quantum_trader_client.models import (
    Candle,
    ClmStatus,
    Job,
    JobAccepted,
    MetaDecision,
    MetaDecisionRequest,
    MetaStrategyState,
    OutcomeAccepted,
    Prediction,
    PredictionRequest,
    ResumeRequest,
    RetrainingRequest,
    SizingDecision,
    SizingDecisionRequest,
    SizingState,
    TradeOutcome,
)

T = TypeVar("T", bound=BaseModel)
RETRY_STATUSES = frozenset({502, 503, 504})


class CLMClient:
    """A client of one API. `transport` (e.g. `httpx.WSGITransport(app=...)`) serves it in-process.

    Retried (up to `retries` more attempts, exponential backoff from `backoff_s`, jittered, capped
    by a `Retry-After` of at most `max_backoff_s`): reads, `report_trade` (its trade id makes a
    repeat harmless: the API answers `replayed`) and `resume_trading` (the same result twice).
    Everything else is sent once, so a decision or a prediction is never recorded twice.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        token: str | None = None,
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the trading engine

    def predict(
        self, symbol: str, model_type: str | None = None, candles: Sequence[Candle] | None = None
    ) -> Prediction:
        """The ACTIVE model's prediction (logged; not retried). `trading_halted` says whether to trade at all."""
        body = PredictionRequest(symbol=symbol, model_type=model_type, candles=list(candles) if candles else None)
        return self._call("POST", "/api/predictions", Prediction, body=body, retry=False)

    def meta_decision(self, state: MetaStrategyState) -> MetaDecision:
        """The meta strategy agent's choice (recorded; not retried)."""
        return self._call(
            "POST", "/api/rl/meta-strategy/decision", MetaDecision, body=MetaDecisionRequest(state=state), retry=False
        )

    def sizing_decision(self, state: SizingState, *, balance_usd: float, open_positions: int = 0) -> SizingDecision:
        """The position sizing agent's clamped decision (recorded; not retried). Trade only when `allowed`."""
        body = SizingDecisionRequest(state=state, balance_usd=balance_usd, open_positions=open_positions)
        return self._call("POST", "/api/rl/position-sizing/decision", SizingDecision, body=body, retry=False)

    def report_trade(self, outcome: TradeOutcome) -> OutcomeAccepted:
        """A closed trade (`execution.trade.closed`); retried: the trade id is the idempotency key."""
        return self._call("POST", "/api/outcomes", OutcomeAccepted, body=outcome, retry=True)

    # ------------------------------------------------------------------ the operator

    def status(self) -> ClmStatus:
        return self._call("GET", "/api/clm/status", ClmStatus, retry=True)

    def trigger_retraining(self, request: RetrainingRequest | None = None) -> JobAccepted:
        """Start a retraining job (not retried: a repeat could start a second job)."""
        return self._call("POST", "/api/jobs/retraining", JobAccepted, body=request or RetrainingRequest(), retry=False)

    def job(self, job_id: str) -> Job:
        return self._call("GET", f"/api/jobs/{job_id}", Job, retry=True)

    def resume_trading(self, reason: str = "operator") -> ClmStatus:
        """Lift the trading halt (retried: resuming twice is resuming once)."""
        return self._call("POST", "/api/clm/resume-trading", ClmStatus, body=ResumeRequest(reason=reason), retry=True)

    # ------------------------------------------------------------------ transport

    def _call(self, method: str, path: str, out: type[T], *, body: BaseModel | None = None, retry: bool) -> T:
        payload = body.model_dump(mode="json", exclude_none=True) if body is not None else None
        attempts = 1 + (self.retries if retry else 0)
        failure: ClientError | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(self._delay(attempt, failure))
            try:
                response = self._http.request(method, path, json=payload)
            except httpx.TimeoutException as exc:
                failure = TimedOut(f"{method} {path}: no answer within the timeout ({exc.__class__.__name__})")
                continue
            except httpx.TransportError as exc:
                failure = Unavailable(f"{method} {path}: {exc.__class__.__name__}: {exc}")
                continue
            if response.is_success:
                return out.model_validate(response.json())
            failure = error_for(response.status_code, _json(response))
            failure.retry_after = _retry_after(response)
            if response.status_code not in RETRY_STATUSES:
                raise failure
        assert failure is not None
        failure.attempts = attempts
        raise failure

    def _delay(self, attempt: int, failure: ClientError | None) -> float:
        hinted = getattr(failure, "retry_after", None)
        delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
        if hinted is not None:
            delay = max(delay, hinted)
        return min(delay, self.max_backoff_s)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": response.text[:500], "status": response.status_code}
    return body if isinstance(body, dict) else {"error": str(body), "status": response.status_code}


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
