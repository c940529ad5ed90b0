"""/metrics computed from the tables; alerts derived, raised once as events, POSTed to the webhook."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, insert, select

from app.api import create_app
from app.bootstrap import bootstrap
from app.cli.main import cli
from app.core.clock import utcnow
from app.core.db.models import AlertAcknowledgement, Event, ModelRegistry, RetrainingJob
from app.core.dispatch import InlineDispatcher
from app.core.topics import DriftDetected
from app.handlers import HANDLER_TABLE
from app.operations import alerts
from app.operations.alerts import current_alerts, raise_new_alerts
from tests.api_fixtures import TOKEN_HEADER, seed_clm_state


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_report_the_seeded_state(sqlite_container) -> None:
    seed_clm_state(sqlite_container)
    outbox = {"delivered": 3, "pending": 2, "dead": 1}
    with sqlite_container.session() as session:
        session.execute(
            insert(Event),
            [
                {"topic": "test.outbox", "payload": {}, "created_at": utcnow(), "status": status, "attempts": 0}
                for status, n in outbox.items()
                for _ in range(n)
            ],
        )
    response = create_app(sqlite_container).test_client().get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    m = _samples(response.get_data(as_text=True))
    assert m[("clm_database_up", ())] == 1.0
    assert m[("clm_retraining_jobs_total", (("job_type", "partial"), ("status", "failed")))] == 1.0
    assert m[("clm_models", (("model_type", "xgboost"), ("status", "SHADOW")))] == 1.0
    assert m[("clm_retraining_job_duration_seconds_count", ())] == 2.0
    assert m[("clm_retraining_job_duration_seconds_sum", ())] == 3000.0
    assert m[("clm_retraining_job_duration_seconds_bucket", (("le", "300"),))] == 1.0
    assert m[("clm_model_winrate", (("model_type", "xgboost"), ("status", "ACTIVE"), ("version", "2")))] == 0.56
    # Served-prediction latency is the API's own histogram (test_api_endpoints), never a scan of the logs.
    assert not any(name.startswith("clm_prediction_latency") for name, _ in m)
    for status in ("pending", "dead"):  # the outbox gauge: only what waits or was given up
        assert m[("clm_events", (("status", status),))] == outbox[status]
    assert ("clm_events", (("status", "delivered"),)) not in m
    assert m[("clm_shadow_models_testing", ())] == 1.0
    assert m[("clm_shadow_samples", (("kind", "with_outcome"), ("model_type", "xgboost"), ("version", "3")))] == 40
    assert m[("clm_promotion_rate", ())] == 1.0
    assert m[("clm_rl_q_table_states", (("rl_type", "position_sizing"),))] == 11.0
    assert m[("clm_rl_epsilon", (("rl_type", "meta_strategy"),))] == 0.12
    assert m[("clm_drift_events_total", (("drift_type", "feature"), ("severity", "critical")))] == 1.0
    assert m[("clm_drift_p_value_bucket", (("le", "0.01"),))] == 2.0
    assert m[("clm_alerts_active", (("name", "retraining_failed"), ("severity", "critical")))] == 1.0


def test_metrics_say_when_the_database_is_down(tmp_path) -> None:
    from app.core.settings import Settings

    settings = Settings(DATABASE_URL=f"sqlite:///{tmp_path / 'none.sqlite'}", ARTIFACT_ROOT=str(tmp_path))
    text = create_app(bootstrap(settings, InlineDispatcher())).test_client().get("/metrics").get_data(as_text=True)
    assert _samples(text)[("clm_database_up", ())] == 0.0


def test_alert_conditions(sqlite_container) -> None:
    seed_clm_state(sqlite_container)
    with sqlite_container.session() as s:
        alerts = current_alerts(s)
        assert [a.severity for a in alerts][:2] == ["critical", "critical"]
        names = {a.name: a for a in alerts}
        assert set(names) == {"retraining_failed", "drift_critical", "drift_high"}
        # The last shadow sample is 30 min old: 30 h later the test is stuck.
        s.add(Event(topic="model.performance.degraded", payload={"model_id": "lightgbm_v1"}, created_at=utcnow()))
        s.flush()
        later = current_alerts(s, now=utcnow() + timedelta(hours=30))
    stuck = [a for a in later if a.name == "shadow_stuck"]
    assert len(stuck) == 1 and "xgboost 3" in stuck[0].message
    assert "retraining_failed" not in {a.name for a in later}  # older than the 24 h window by then
    with sqlite_container.session() as s:
        s.add(Event(topic="model.performance.degraded", payload={"model_id": "xgboost_v2"}, created_at=utcnow()))
        s.add(Event(topic="rl.sizing.reset", payload={"old_version": 35, "new_version": 36}, created_at=utcnow()))
        s.flush()
        names = {a.name for a in current_alerts(s)}
    assert {"all_models_degraded", "rl_reset"} <= names and "model_degraded" not in names


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_alerts_are_raised_once_and_posted_to_the_webhook(sqlite_container) -> None:
    assert ("alert.*", alerts.deliver_webhook) in HANDLER_TABLE
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sqlite_container.settings.alert_webhook_url = f"http://127.0.0.1:{server.server_port}/hook"
        seed_clm_state(sqlite_container)
        _Receiver.status = 500  # the receiver is down: the outbox keeps the alert and retries
        first = raise_new_alerts(sqlite_container)
        assert {a.name for a in first} == {"retraining_failed", "drift_critical", "drift_high"}
        assert raise_new_alerts(sqlite_container) == []  # raised once
        with sqlite_container.session() as s:
            pending = s.scalars(select(Event).where(Event.topic.like("alert.%"))).all()
            assert {e.status for e in pending} == {"pending"} and all(e.last_error for e in pending)
        _Receiver.status = 200
        sqlite_container.bus.deliver_pending(force=True)
        names = {r["name"] for r in _Receiver.received if r["topic"].startswith("alert.")}
        assert names == {"retraining_failed", "drift_critical", "drift_high"}
        assert any(r["severity"] == "critical" and r["topic"] == "alert.critical" for r in _Receiver.received)
    finally:
        server.shutdown()


def test_a_drift_event_raises_its_alert_through_the_handler_table(sqlite_container) -> None:
    with sqlite_container.session() as s:
        s.add(
            ModelRegistry(
                model_id="naive_v1", model_type="naive", version="1", status="ACTIVE", metrics={},
                created_at=utcnow(), file_path="x",
            )
        )  # fmt: skip
    from app.core.db.models import DriftEvent

    with sqlite_container.session() as s:
        now = utcnow()
        s.add(DriftEvent(detected_at=now, drift_type="feature", severity="critical", p_value=1e-6, created_at=now))
        sqlite_container.bus.publish(
            s, DriftDetected(severity="critical", p_value=1e-6, drift_type="feature", feature="volume_z_48")
        )
    with sqlite_container.session() as s:
        alerts = s.scalars(select(Event).where(Event.topic == "alert.critical")).all()
    assert [a.payload["name"] for a in alerts] == ["drift_critical"]


def test_the_periodic_check_notices_a_quiet_shadow_test(sqlite_container) -> None:
    from app.operations.schedule import periodic_jobs
    from tasks.alerts import check_alerts

    assert "tasks.alerts.check_alerts" in {j.task for j in periodic_jobs(sqlite_container.policy_store.get())}
    with sqlite_container.session() as s:
        old = utcnow() - timedelta(hours=30)
        for model_id, status in (("naive_v1", "ACTIVE"), ("naive_v2", "SHADOW")):
            s.add(
                ModelRegistry(
                    model_id=model_id, model_type="naive", version=model_id[-1], status=status, metrics={},
                    created_at=old, file_path="x",
                )
            )  # fmt: skip
    assert check_alerts() == {"raised": [f"shadow_stuck:naive_v2:{old.isoformat()}"]}
    assert check_alerts() == {"raised": []}


def test_alerts_are_whole_and_acknowledged_once_through_the_api_the_cli_and_the_page(sqlite_container) -> None:
    seed = seed_clm_state(sqlite_container)
    # A long error whose cause is at its end (it was cut at 200 characters before).
    error = "xgboost: RuntimeError: " + "while fitting fold 3 of 5 the worker " * 12 + "ran out of memory (OOM at 6 GB)"
    with sqlite_container.session() as s:
        s.get(RetrainingJob, seed.failed_job).error_message = error
    client = create_app(sqlite_container).test_client()
    listed = {a["name"]: a for a in client.get("/api/alerts").get_json()["alerts"]}
    failed = listed["retraining_failed"]
    assert failed["message"].endswith("ran out of memory (OOM at 6 GB)") and error in failed["message"]
    assert failed["acknowledged"] is None and failed["id"] == alerts.alert_id(failed["key"])
    page = client.get("/").get_data(as_text=True)
    item = re.search(
        rf'<li class="alert critical" data-alert="retraining_failed" data-alert-id="{failed["id"]}">.*?</li>',
        page,
        re.S,
    )
    assert item and "ran out of memory (OOM at 6 GB)" in item[0] and "<details" in item[0]  # whole, behind an expand
    assert "not acknowledged" in item[0]

    first = client.post(
        f"/api/alerts/{failed['id']}/ack", json={"by": "alice", "note": "looking"}, headers=TOKEN_HEADER
    )
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["recorded"] is True and body["holds"] is True and body["acknowledged"]["by"] == "alice"
    with sqlite_container.session() as s:
        row = s.get(AlertAcknowledgement, failed["id"])
        assert row is not None and row.acknowledged_by == "alice" and row.alert_key == failed["key"]
        assert abs((utcnow() - row.acknowledged_at).total_seconds()) < 60 and row.note == "looking"
    # Idempotent: a repeat (by someone else) keeps the first acknowledgement.
    again = client.post(f"/api/alerts/{failed['id']}/ack", json={"by": "bob"}, headers=TOKEN_HEADER).get_json()
    assert again["recorded"] is False and again["acknowledged"] == body["acknowledged"]
    listed = {a["name"]: a for a in client.get("/api/alerts").get_json()["alerts"]}
    assert listed["retraining_failed"]["acknowledged"]["by"] == "alice"
    assert listed["drift_critical"]["acknowledged"] is None  # only that occurrence
    page = client.get("/").get_data(as_text=True)
    assert re.search(r'class="alert critical acknowledged" data-alert="retraining_failed"', page)
    assert (
        "acknowledged by alice" in page
        and 'class="alert critical acknowledged" data-alert="drift_critical"' not in page
    )
    # After its condition ended, the acknowledgement is still answered (not a 404).
    late = alerts.acknowledge(sqlite_container, failed["id"], "carol", now=utcnow() + timedelta(hours=30))
    assert late.recorded is False and late.holds is False and late.acknowledgement.by == "alice"

    # The CLI lists ids with their acknowledgement and acknowledges by id.
    runner = CliRunner()
    listing = runner.invoke(cli, ["alerts", "list"], catch_exceptions=False)
    assert listing.exit_code == 0 and f"{failed['id']} [acknowledged by alice" in listing.output
    drift = listed["drift_critical"]["id"]
    acked = runner.invoke(cli, ["alerts", "ack", drift, "--by", "dave"], catch_exceptions=False)
    assert acked.exit_code == 0 and f"alert {drift} (drift_critical) acknowledged by dave" in acked.output
    repeat = runner.invoke(cli, ["alerts", "ack", drift, "--by", "erin"], catch_exceptions=False)
    assert "already acknowledged by dave" in repeat.output
    unknown = runner.invoke(cli, ["alerts", "ack", "0123456789ab"])
    assert unknown.exit_code != 0 and "not found" in unknown.output
    with sqlite_container.session() as s:
        assert s.scalar(select(func.count()).select_from(AlertAcknowledgement)) == 2  # the unknown id changed nothing


def test_a_drift_alert_names_the_newest_event_of_the_window(sqlite_container) -> None:
    """Rows written out of time order: the alert counts the window's rows (in SQL) and names the
    highest id (the newest written), as when it loaded every row of the window."""
    from app.core.db.models import DriftEvent

    now = utcnow()
    with sqlite_container.session() as s:
        for hours_ago, feature in [(2, "a"), (30, "old"), (1, "b"), (5, "newest id, earlier detection")]:
            s.add(
                DriftEvent(
                    detected_at=now - timedelta(hours=hours_ago), drift_type="feature", feature_name=feature,
                    severity="high", p_value=0.001, created_at=now,
                )
            )  # fmt: skip
        s.flush()
        newest = max(s.scalars(select(DriftEvent.id)))
        high = [a for a in current_alerts(s, now) if a.name == "drift_high"]
    assert len(high) == 1 and high[0].key == f"drift_high:{newest}"
    assert high[0].message.startswith("3 HIGH drift event(s) in 24 h") and "newest id" in high[0].message
