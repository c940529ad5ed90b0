"""From a job's small spec dict to a built dataset (data_pipeline's `DatasetSpec`).

The job's spec holds overrides of the policy's data settings (`symbols`, `timeframe`,
`source`, `files`, `start`/`end` or `lookback_days`, ...) and its `end` is fixed when the
job starts, so a redelivered step builds the very same dataset (ids are spec hashes).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.core.clock import utcnow
from app.data_pipeline.dataset import DatasetSpec, build_dataset

if TYPE_CHECKING:
    from app.core.container import Container


def _moment(value: Any) -> datetime | None:
    moment = value if value is None or isinstance(value, datetime) else datetime.fromisoformat(str(value))
    # Naive UTC, as stored: an offset ("+05:00") is converted, not dropped.
    return moment if moment is None or moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def dataset_spec(container: Container, spec: dict[str, Any]) -> Any:
    """The `DatasetSpec` a job's spec stands for (raises a clear ValueError when invalid)."""
    from pydantic import ValidationError

    policy = container.policy_store.get()
    values = {k: v for k, v in spec.items() if k not in ("dataset_id", "lookback_days")}
    end = _moment(values.pop("end", None)) or utcnow()
    lookback_days = float(spec.get("lookback_days", policy.data.lookback_days))
    start = _moment(values.pop("start", None)) or end - timedelta(days=lookback_days)
    if "symbols" in values:
        values["symbols"] = tuple(values["symbols"])
    try:
        return DatasetSpec.from_policy(policy, end=end, start=start, **values)
    except (ValidationError, TypeError) as exc:
        raise ValueError(f"invalid dataset spec {sorted(spec)}: {exc}") from None


def build_job_dataset(container: Container, spec: dict[str, Any]) -> str:
    """Build (or reuse) the dataset of a job's spec; returns its id."""

    return str(build_dataset(container, dataset_spec(container, spec)).dataset_id)
