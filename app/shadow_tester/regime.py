"""Which test a shadow model faces: superiority, or non-inferiority after a regime change.

The shadow test's default question is "is the challenger better?", and the incumbent keeps its
place until the pairs show it (`stats._recommend`). That is the right default while both models
were trained on the market that trades now. After a regime change it protects the wrong model:

- the drift checks found, with their own tests, that the market moved away from the incumbent's
  training data, and the drift window (`app/retraining/window.py`) estimated where;
- the challenger was trained on the market since that change point and passed the walk-forward
  gate on it; the incumbent never saw a candle of it;
- measured on the synthetic shift (`bench/learnability.py`): a model retrained on 2 to 8 days of the
  new market beats the frozen one in 9 of 10 seeds by about 22 bp a row, but a superiority test at
  the first look's level sees it in 5 of 10 only after 9 days of pairs. Meanwhile the stale
  incumbent keeps trading.

So when a challenger's retraining started its window at a drift's change point and all of the
incumbent's training data (train, validation and test rows) end before that change point, the test
asks non-inferiority instead (`Thresholds.non_inferiority_margin`): promote once the pairs show
the challenger trails the incumbent by less than the policy's margin per pair
(`clm_config.auto_promote_threshold.non_inferiority_margin_pct`, one round trip of fees by
default), at the same looks and levels; a challenger shown worse than the incumbent (no margin)
is still rejected. A margin of 0 switches the rule off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from app.core.db.models import ModelRegistry as ModelRow
from app.core.db.models import RetrainingJob
from app.core.policy import Policy


@dataclass(frozen=True)
class ShadowRule:
    """The margin a shadow test uses (0: superiority) and why."""

    margin: float
    reason: str | None = None


SUPERIORITY = ShadowRule(0.0)


def rule_for(session: Session, policy: Policy, shadow_model_id: str, active_model_id: str | None) -> ShadowRule:
    """Non-inferiority when the shadow was trained from a drift's change point that all of the
    active model's data precede; superiority otherwise (see module doc)."""
    margin = policy.clm_config.auto_promote_threshold.non_inferiority_margin_pct / 100.0
    if margin <= 0 or active_model_id is None:
        return SUPERIORITY
    shadow = session.get(ModelRow, shadow_model_id)
    active = session.get(ModelRow, active_model_id)
    if shadow is None or active is None or not shadow.job_id:
        return SUPERIORITY
    job = session.get(RetrainingJob, shadow.job_id)
    window = (job.metadata_ or {}).get("training_window") if job is not None else None
    change_point = _change_point_ms(window)
    active_end = _data_end_ms(active.training_data_range)
    if change_point is None or active_end is None or active_end >= change_point:
        return SUPERIORITY
    when = datetime.fromtimestamp(change_point / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    active_last = datetime.fromtimestamp(active_end / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    return ShadowRule(
        margin,
        f"non-inferiority (margin {margin * 1e4:.1f} bp a pair): {shadow.model_type} v{shadow.version} was "
        f"trained from the drift's change point {when} UTC; the active v{active.version}'s data end {active_last}",
    )


def _change_point_ms(window: Any) -> int | None:
    if not isinstance(window, dict) or window.get("method") != "change_point" or not window.get("change_point"):
        return None
    try:
        moment = datetime.fromisoformat(str(window["change_point"]))
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return int(moment.timestamp() * 1000)


def _data_end_ms(data_range: Any) -> int | None:
    """The last row (any part: train, validation, test) the model's data held; None when unknown."""
    if not isinstance(data_range, dict):
        return None
    ends = [part.get("end_ms") for part in data_range.values() if isinstance(part, dict)]
    known = [int(end) for end in ends if isinstance(end, int | float)]
    return max(known) if known else None
