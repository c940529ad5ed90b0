"""The operator's CLI on the embedded stack: retrain with a progress bar, overview, jobs, promote, roll back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.bootstrap import bootstrap, set_container
from app.cli.main import cli
from app.core.settings import Mode, Settings

SYNTHETIC = json.dumps({"source": "synthetic", "symbols": ["BTC/USDT"], "timeframe": "1h", "lookback_days": 120})


@pytest.fixture
def run_cli(tmp_path: Path):
    """Invoke the CLI in this process on an embedded container whose Celery runs eagerly."""
    from workers.celery_app import celery_app, configure
    from workers.celery_dispatcher import CeleryDispatcher

    settings = Settings(
        CLM_MODE=Mode.EMBEDDED, DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite'}", ARTIFACT_ROOT=str(tmp_path / "a")
    )
    configure(settings)  # eager: another test of this process may have pointed Celery at a broker
    container = bootstrap(settings, CeleryDispatcher(celery_app), migrate=True)
    container.policy_store.ensure_default()
    set_container(container)
    runner = CliRunner()
    yield lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)
    set_container(None)
    container.dispose()


def test_operator_commands(run_cli) -> None:
    first = run_cli("retrain", "--model-type", "naive", "--spec", SYNTHETIC, "--reason", "cli test")
    assert first.exit_code == 0, first.output[-2000:]
    job_id = first.stdout.split()[1]
    assert f"{job_id}: completed" in first.stdout and "naive: registered naive_v1" in first.stdout
    assert "100%" in first.stderr  # the progress reached its end
    refused = run_cli("retrain", "--model-type", "gpt")
    assert refused.exit_code == 2 and "unknown model types ['gpt']" in refused.stderr
    no_shadow = run_cli("promote", "naive")
    assert no_shadow.exit_code == 1 and "no SHADOW model" in no_shadow.stderr

    second = run_cli("retrain", "--model-type", "naive", "--spec", SYNTHETIC)
    assert second.exit_code == 0, second.output[-2000:]
    models = run_cli("models", "--type", "naive").stdout
    assert "naive_v2                 SHADOW" in models and "naive_v1                 ACTIVE" in models
    overview = run_cli("overview").stdout
    assert "Retraining status: IDLE" in overview and "naive      v1   shadow v2" in overview
    assert "Shadow naive v2: 0/1000 samples" in overview
    assert json.loads(run_cli("overview", "--json").stdout)["models"]["naive"]["shadow"]["version"] == "2"

    promoted = run_cli("promote", "naive")
    assert promoted.exit_code == 0 and "v2 (naive_v2) is ACTIVE" in promoted.stdout
    rolled = run_cli("rollback", "naive", "1")
    assert rolled.exit_code == 0 and "v1 (naive_v1) is ACTIVE" in rolled.stdout
    jobs = run_cli("jobs", "list").stdout.splitlines()
    assert len(jobs) == 2 and all("COMPLETED" in line for line in jobs)
    shown = json.loads(run_cli("jobs", "show", job_id).stdout)
    assert shown["trigger_reason"] == "cli test" and shown["models"]["naive"]["model_id"] == "naive_v1"
    assert run_cli("jobs", "show", "RTN-19990101-001").exit_code == 1
