from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite'}", ARTIFACT_ROOT=str(tmp_path / "a"))
    env.pop("CLM_MODE", None)
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args], cwd=REPO, env=env, capture_output=True, text=True
    )


def test_upgrade_creates_the_embedded_database_and_status_reports(tmp_path: Path) -> None:
    result = _cli(tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cli.sqlite").exists()
    status = json.loads(_cli(tmp_path, "status").stdout)
    assert status["database"]["ok"] is True and status["policy_version"] == 0
    assert _cli(tmp_path, "policy", "set", "clm_config.schedule_interval_days", "3").returncode == 0
    assert json.loads(_cli(tmp_path, "status").stdout)["policy_version"] == 1


def test_policy_set_refuses_bad_values_with_the_field(tmp_path: Path) -> None:
    assert _cli(tmp_path, "db", "upgrade").returncode == 0
    bad = _cli(tmp_path, "policy", "set", "--", "clm_config.drift_detection.check_interval_hours", "-1")
    assert bad.returncode == 2
    assert "clm_config.drift_detection.check_interval_hours" in bad.stderr
    good = _cli(tmp_path, "policy", "set", "clm_config.drift_detection.check_interval_hours", "12")
    assert good.returncode == 0 and "v1" in good.stdout


def test_a_negative_value_is_a_value_not_an_option(tmp_path: Path) -> None:
    assert _cli(tmp_path, "db", "upgrade").returncode == 0
    bad = _cli(tmp_path, "policy", "set", "clm_config.drift_detection.check_interval_hours", "-0.5")  # no "--"
    assert bad.returncode == 2 and "No such option" not in bad.stderr
    assert "clm_config.drift_detection.check_interval_hours" in bad.stderr


def test_jobs_subcommands_have_help(tmp_path: Path) -> None:
    listing = _cli(tmp_path, "jobs", "--help").stdout
    for name in ("list", "show", "cancel"):
        line = next(line for line in listing.splitlines() if line.strip().startswith(name))
        assert len(line.split()) > 1, f"jobs {name} has no help: {line!r}"
