"""Monitoring files: compose is valid, and every Prometheus rule and Grafana panel uses a metric /metrics exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.api import create_app
from tests.api_fixtures import TOKEN_HEADER, seed_clm_state, synthetic_candles, train_meta_agent, train_naive

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def _exported(sqlite_container) -> set[str]:
    seed_clm_state(sqlite_container)
    train_meta_agent(sqlite_container, trades=40)  # its saved version records the random baseline
    train_naive(sqlite_container)
    client = create_app(sqlite_container).test_client()
    client.get("/metrics")  # the API's request metrics have samples once a request was served
    served = client.post(  # ... and its prediction latency once a prediction was
        "/api/predictions",
        json={"symbol": "BTC/USDT", "model_type": "naive", "candles": synthetic_candles()},
        headers=TOKEN_HEADER,
    )
    assert served.status_code == 200, served.get_json()
    text = client.get("/metrics").get_data(as_text=True)
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(s.name for s in family.samples)
    return names


def _metric_names(expr: str) -> set[str]:
    # flower_* metrics come from Flower's own /metrics (checked in tests/integration/test_flower.py)
    return {m for m in re.findall(r"\b(clm_[a-z0-9_]+)", expr)}


def test_compose_file_is_valid_and_complete() -> None:
    env = dict(os.environ, CLM_API_TOKEN="x", FLOWER_BASIC_AUTH="u:p", GRAFANA_ADMIN_PASSWORD="p")
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed: `apt-get install docker-compose` (.ci/run does it)")
    result = subprocess.run(["docker-compose", "config", "-q"], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    wanted = {
        "postgres",
        "redis",
        "migrate",
        "api",
        "worker-cpu",
        "worker-gpu",
        "beat",
        "flower",
        "prometheus",
        "grafana",
    }
    assert wanted <= set(services)
    assert all("healthcheck" in services[s] for s in wanted - {"migrate"})
    assert services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    # A missing secret is refused by name rather than silently empty.
    bare = {k: v for k, v in env.items() if k != "GRAFANA_ADMIN_PASSWORD"}
    refused = subprocess.run(["docker-compose", "config", "-q"], cwd=REPO, env=bare, capture_output=True, text=True)
    assert refused.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in refused.stderr


def test_prometheus_rules_use_exported_metrics(sqlite_container) -> None:
    exported = _exported(sqlite_container)
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["api:8000"]
    rules = yaml.safe_load((MONITORING / "alert_rules.yml").read_text())["groups"]
    by_severity: dict[str, list[str]] = {}
    for group in rules:
        for rule in group["rules"]:
            by_severity.setdefault(rule["labels"]["severity"], []).append(rule["alert"])
            unknown = _metric_names(rule["expr"]) - exported
            assert not unknown, f"{rule['alert']} uses metrics /metrics does not export: {unknown}"
    assert {"RetrainingJobFailed", "DriftCritical", "AllModelsDegraded", "ShadowTestStuck"} <= set(
        by_severity["critical"]
    )
    assert {"DriftHigh", "ModelDegraded", "RLQTableReset", "ShadowPromotionForReview"} <= set(by_severity["warning"])


def test_grafana_dashboard_panels_use_exported_metrics(sqlite_container) -> None:
    exported = _exported(sqlite_container)
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "clm.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 20
    for panel in panels:
        for target in panel["targets"]:
            unknown = _metric_names(target["expr"]) - exported
            assert not unknown, f"panel {panel['title']!r} uses unknown metrics {unknown}"
    titles = " ".join(p["title"] for p in panels).lower()
    for topic in ("duration", "winrate", "calibration", "latency", "promotion", "q-table", "epsilon", "p-value"):
        assert topic in titles


def test_procfile_flower_refuses_to_run_without_basic_auth() -> None:
    """`make stack` as compose: Flower with FLOWER_BASIC_AUTH or not at all (test_flower.py runs it with)."""
    line = next(x for x in (REPO / "Procfile").read_text().splitlines() if x.startswith("flower:"))
    command = line.split(":", 1)[1]
    assert '--basic-auth="${FLOWER_BASIC_AUTH:?' in command and "--address=127.0.0.1" in command
    unset = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH"}
    for env in (unset, unset | {"FLOWER_BASIC_AUTH": ""}):
        refused = subprocess.run(["sh", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "FLOWER_BASIC_AUTH" in refused.stderr, refused.stderr
