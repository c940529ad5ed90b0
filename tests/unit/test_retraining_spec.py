"""RetrainingSpec: validated once where a request enters; the job row keeps it; the API's records."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.api.schemas import Job, Model
from app.core.policy import Policy
from app.model_registry import ModelRecord
from app.retraining import RetrainingOrchestrator
from app.retraining.datasets import dataset_spec
from app.retraining.jobs import JobRecord
from app.retraining.spec import DataSelection, InvalidRetrainingSpecError, RetrainingSpec

NOW = datetime(2026, 3, 4, 12, 30, 45)


def test_a_full_spec_takes_the_policys_model_types_and_data_and_fixes_the_end() -> None:
    policy = Policy()
    spec = RetrainingSpec.create(policy, None, "weekly", now=NOW)
    assert spec.job_type == "full" and spec.model_types == tuple(policy.training.model_types)
    assert spec.data.symbols == tuple(policy.data.symbols) and spec.data.end == datetime(2026, 3, 4, 12, 30)
    stored = spec.data.stored()
    assert stored["symbols"] == list(policy.data.symbols) and stored["end"] == "2026-03-04T12:30:00"
    assert DataSelection.model_validate(stored) == spec.data  # what the dataset step reads back


def test_a_partial_spec_dedupes_and_names_refused_fields() -> None:
    policy = Policy()
    spec = RetrainingSpec.create(policy, ["naive", "naive"], data={"timeframe": "1h", "lookback_days": 3}, now=NOW)
    assert spec.model_types == ("naive",) and spec.data.timeframe == "1h"
    built = dataset_spec(policy, spec.data)
    assert (built.end - built.start).days == 3 and built.timeframe == "1h"
    with pytest.raises(InvalidRetrainingSpecError) as refused:
        RetrainingSpec.create(policy, ["gpt"], data={"start": "2026-03-05T00:00:00"}, now=NOW)
    fields = {e.field for e in refused.value.errors}
    assert fields == {"model_types", "data"}
    assert "unknown model types ['gpt']" in str(refused.value)


def _naive(values: dict) -> dict:
    return {k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in values.items()}


def test_the_api_schemas_are_the_records_public_part(sqlite_container) -> None:
    from app.model_registry import ModelRegistry

    job_id = RetrainingOrchestrator(sqlite_container).start_partial(["naive"])
    job = RetrainingOrchestrator(sqlite_container).get_job(job_id)
    assert isinstance(job, JobRecord)
    answered = Job.of(job).model_dump()
    assert answered.pop("forced_over") is None  # the API's additions: what `force: true` overrode,
    assert answered.pop("training_window") is None  # and how a drift-triggered job chose its window
    assert _naive(answered) == job.public_dict()  # the API's times carry their UTC offset
    assert set(Job.of(job).model_dump(mode="json")) == set(JobRecord.model_fields) - JobRecord.INTERNAL - {"models"} | {
        "models_trained",
        "forced_over",
        "training_window",
    }
    model_id = ModelRegistry(sqlite_container).register_model(
        {"model_type": "naive", "file_path": "m/a.json", "sha256": "0" * 64}
    )
    model = ModelRegistry(sqlite_container).get_model(model_id)
    assert _naive(Model.of(model).model_dump()) == model.public_dict()
    assert set(Model.of(model).model_dump()) == set(ModelRecord.model_fields) - ModelRecord.INTERNAL
