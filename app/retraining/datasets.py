"""From a job's `DataSelection` to a built dataset (data_pipeline's `DatasetSpec`).

The selection holds the policy's data settings and the request's overrides (`symbols`,
`timeframe`, `source`, `files`, `start`/`end` or `lookback_days`, ...); its `end` is fixed
when the job starts, so a redelivered step builds the very same dataset (ids are spec hashes).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import ValidationError

from app.core.clock import utcnow
from app.core.policy import Policy
from app.data_pipeline.dataset import DatasetSpec, build_dataset
from app.retraining.spec import DataSelection

if TYPE_CHECKING:
    from app.core.container import Container


def dataset_spec(policy: Policy, selection: DataSelection) -> DatasetSpec:
    """The `DatasetSpec` a job's selection stands for (raises a clear ValueError when invalid)."""
    values = {k: v for k, v in selection if v is not None and k not in ("dataset_id", "lookback_days")}
    end = values.pop("end", None) or utcnow()
    lookback_days = policy.data.lookback_days if selection.lookback_days is None else selection.lookback_days
    start = values.pop("start", None) or end - timedelta(days=lookback_days)
    try:
        return DatasetSpec.from_policy(policy, end=end, start=start, **values)
    except (ValidationError, TypeError) as exc:
        named = sorted(k for k, v in selection if v is not None)
        raise ValueError(f"invalid dataset spec {named}: {exc}") from None


def build_job_dataset(container: Container, selection: DataSelection) -> str:
    """Build (or reuse) the dataset of a job's selection; returns its id."""
    if selection.dataset_id:
        return selection.dataset_id
    return str(build_dataset(container, dataset_spec(container.policy_store.get(), selection)).dataset_id)
