"""The shadow test's report scores both models as staggered books with app/model_training/scoring.py
(GET /api/shadow/<id>, `book`), on the real PostgreSQL and on SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import insert

from app.api import create_app
from app.core.clock import utcnow
from app.core.db.models import ShadowTestResult
from tests.integration.test_shadow_tester import add_model

pytestmark = pytest.mark.integration

START = datetime(2024, 1, 1)
STEP = timedelta(minutes=5)  # the policy's 5m candles; horizon 12, fee 0.1 % a side


def _write(container, shadow: str, active: str, pairs: list[tuple[str, datetime, int, int, float | None]]) -> None:  # type: ignore[no-untyped-def]
    rows = [
        dict(
            shadow_model_id=shadow, active_model_id=active, symbol=symbol, timestamp=at, active_prediction={},
            shadow_prediction={}, active_direction=a, shadow_direction=s, active_confidence=0.6,
            shadow_confidence=0.6, realized_return=r, created_at=utcnow(),
        )
        for symbol, at, a, s, r in pairs
    ]  # fmt: skip
    with container.session() as session:
        session.execute(insert(ShadowTestResult), rows)


@pytest.mark.parametrize("backend", ["pg_container", "sqlite_container"])
def test_the_report_scores_both_books_on_the_decisions_pairs(backend, request) -> None:
    container = request.getfixturevalue(backend)
    add_model(container, "active_b", "ACTIVE")
    add_model(container, "shadow_b", "SHADOW")
    rng = np.random.default_rng(5)
    pairs = []
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for k in range(240):
            r = float(rng.normal(0, 0.01))
            pairs.append((symbol, START + k * STEP, -int(np.sign(r)), int(np.sign(r)), r))  # shadow right, active wrong
    _write(container, "shadow_b", "active_b", pairs)
    client = create_app(container).test_client()
    body = client.get("/api/shadow/shadow_b?min_samples=100").get_json()
    # Looks at 100, 200, 400 ...: the decision reads the first 400 of 480 pairs, and so does the book.
    assert (body["total_samples"], body["decision_samples"]) == (480, 400)
    book = body["book"]
    assert book["pairs"] == book["candles"] == 400 and book["book"] == "spread"
    assert "app.model_training.scoring" in book["scoring"] and book["horizon"] == 12
    shadow, active, difference = book["shadow"], book["active"], book["difference"]
    assert shadow["directional_accuracy"] == 1.0 and active["directional_accuracy"] == 0.0
    assert shadow["traded_share"] == active["traded_share"] == 1.0
    assert shadow["net_pnl"] > 0 > active["net_pnl"] and shadow["sharpe"] > 0 > active["sharpe"]
    assert difference["net_pnl"] == pytest.approx(shadow["net_pnl"] - active["net_pnl"])
    for stat in ("sharpe", "net_pnl", "directional_accuracy"):
        low, high = difference["interval_95"][stat]
        assert 0 < low <= difference[stat] <= high, stat
    # The per-pair figures are still there, beside the book, and decide as before.
    assert body["shadow_metrics"]["hit_rate"] == 1.0 and body["recommendation"] == "PROMOTE"


@pytest.mark.parametrize("backend", ["pg_container", "sqlite_container"])
def test_the_book_pays_fees_on_position_changes_one_call_per_candle_and_gaps_are_flat(backend, request) -> None:
    container = request.getfixturevalue(backend)
    add_model(container, "active_f", "ACTIVE")
    add_model(container, "shadow_f", "SHADOW")
    pairs = []
    # No market moves: only fees count. The shadow is long on every candle, the active flat.
    for k in [*range(100), *range(130, 200)]:  # BTC: a gap of 30 candles, longer than the horizon (12)
        pairs.append(("BTCUSDT", START + k * STEP, 0, 1, 0.0))
    for k in range(200):
        pairs.append(("ETHUSDT", START + k * STEP, 0, 1, 0.0))
        if k < 50:  # asked again within the same candle: the first call of the candle counts
            pairs.append(("ETHUSDT", START + k * STEP + timedelta(seconds=30), 1, -1, 0.0))
    _write(container, "shadow_f", "active_f", pairs)
    body = create_app(container).test_client().get("/api/shadow/shadow_f?min_samples=420").get_json()
    book = body["book"]
    assert (book["pairs"], book["candles"]) == (420, 370)
    fee = 0.1 / 100
    # BTC's book is entered, closed across the gap, entered again and closed: two round trips; ETH's
    # one. The capital is shared by the two symbols.
    assert book["shadow"]["net_pnl"] == pytest.approx(-(2 * 2 * fee + 2 * fee) / 2, rel=1e-9)
    assert book["active"]["net_pnl"] == 0.0
    assert book["shadow"]["traded_share"] == 1.0 and book["active"]["traded_share"] == 0.0
    assert book["shadow"]["directional_accuracy"] is None  # nothing moved: no traded row to judge


@pytest.mark.parametrize("backend", ["pg_container", "sqlite_container"])
def test_a_test_without_closed_pairs_reports_an_empty_book(backend, request) -> None:
    container = request.getfixturevalue(backend)
    add_model(container, "active_e", "ACTIVE")
    add_model(container, "shadow_e", "SHADOW")
    _write(container, "shadow_e", "active_e", [("BTCUSDT", START, 1, 1, None)])  # still open
    body = create_app(container).test_client().get("/api/shadow/shadow_e").get_json()
    assert body["total_samples"] == 0 and body["recommendation"] == "CONTINUE_TESTING"
    book = body["book"]
    assert (book["pairs"], book["candles"]) == (0, 0)
    assert book["shadow"] is None and book["active"] is None and book["difference"] is None
