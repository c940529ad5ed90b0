"""The main run's issue-17 steps: a post-drift promotion, and live beating frozen after the shift."""

from __future__ import annotations

from app.simulation.story import Story


def _story(promoted_after_drift: list[str], post_shift: dict | None) -> Story:
    return Story(
        initial_active={},
        first_drift_at=None,
        drift_before_shift=[],
        drift_after_shift_at=None,
        retraining_after_drift=None,
        shadow_tests_started=[],
        promoted=list(promoted_after_drift),
        rejected=[],
        regime_changes=[],
        rl_resets=[],
        archived_rl_versions=[],
        promoted_after_drift=promoted_after_drift,
        post_shift=post_shift,
    )


def _figures(sharpe: float) -> dict:
    return {"sharpe": sharpe, "net_pnl": sharpe / 100, "hit_rate": 0.5, "rows": 400}


def _step(story: Story, start: str) -> tuple[bool, str]:
    ((ok, detail),) = [(ok, detail) for step, ok, detail in story.checks() if step.startswith(start)]
    return ok, detail


def test_recovery_needs_the_live_book_above_the_frozen_one() -> None:
    better = _story(["xgboost_v2"], {"since": "2025-01-24", "live": _figures(1.5), "frozen": _figures(-0.5)})
    worse = _story([], {"since": "2025-01-24", "live": _figures(-0.5), "frozen": _figures(1.5)})
    assert _step(better, "a model retrained after the drift") == (True, "xgboost_v2")
    assert _step(worse, "a model retrained after the drift") == (False, "none promoted after the drift")
    ok, detail = _step(better, "after the shift the live models")
    assert ok and "live Sharpe +1.50" in detail and "frozen Sharpe -0.50" in detail
    assert not _step(worse, "after the shift the live models")[0]


def test_no_shift_or_no_rows_is_not_a_recovery() -> None:
    assert _step(_story([], None), "after the shift the live models") == (False, "no shift in this run")
    empty = _story([], {"rows": 0, "reason": "no stored candles from 2025-01-24 00:00"})
    assert _step(empty, "after the shift the live models") == (False, "no stored candles from 2025-01-24 00:00")
