"""`RetrainingSpec`: what one retraining request asks for, validated once where it enters.

The API, the CLI and the CLM build it with `RetrainingSpec.create` (model types checked,
the policy's data settings filled in, `end` fixed); the job row stores it (`job_type`,
`model_types`, `trigger_reason` columns and `metadata.spec`, the `DataSelection`), and the
dataset step reads the `DataSelection` back from the row. Task messages carry the job id only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.core.clock import utcnow
from app.core.policy import FeatureConfig, LabelConfig, Policy
from app.data_pipeline.timeframes import timeframe_ms
from app.forecasters import MODEL_TYPES

JobKind = Literal["full", "partial"]


@dataclass(frozen=True)
class SpecError:
    field: str  # dotted path in the spec: "model_types", "data", "data.symbols"
    reason: str


class InvalidRetrainingSpecError(ValueError):
    """A retraining request that cannot be run as asked; `errors` name the fields."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.reason}" if e.field else e.reason for e in errors))
        self.errors = errors


class DataSelection(BaseModel):
    """Which data a job trains on: the policy's `data` settings and any `DatasetSpec` override.

    `dataset_id` reuses a dataset already built; `lookback_days` sets `start` when none is given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    exchange: str | None = None
    symbols: tuple[str, ...] | None = Field(None, min_length=1)
    timeframe: str | None = None
    lookback_days: float | None = Field(None, gt=0)
    start: datetime | None = None  # naive UTC
    end: datetime | None = None  # naive UTC; fixed when the job starts
    source: Literal["store", "exchange", "synthetic", "files"] | None = None
    files: dict[str, str] | None = None
    seed: int | None = None
    shift_at: datetime | None = None
    synthetic_origin: datetime | None = None
    features: FeatureConfig | None = None
    labels: LabelConfig | None = None
    dataset_id: str | None = None

    @field_validator("start", "end", "shift_at", "synthetic_origin")
    @classmethod
    def _naive_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DataSelection:
        if self.timeframe is not None:
            timeframe_ms(self.timeframe)
        if self.symbols is not None and len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols repeat: {list(self.symbols)}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    def stored(self) -> dict[str, Any]:
        """The JSON kept in the job row (`metadata.spec`)."""
        return self.model_dump(mode="json", exclude_none=True)


class TrainingWindow(BaseModel):
    """How a drift-triggered retraining chose its training window (`app/retraining/window.py`).

    `start` None: the normal window (the policy's lookback), for the `reason` given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["fixed", "change_point"]
    start: datetime | None = None  # naive UTC: where the training window starts
    change_point: datetime | None = None  # naive UTC: the last change point found
    clipped: bool = False  # the change point left too short a window: moved back to min_window_days
    # The change point left too short a window and the policy waits (drift_window.short_window "wait"):
    # no retraining starts now; `ready_at` is when the window since the change point is long enough.
    deferred: bool = False
    ready_at: datetime | None = None
    # The candles read start before `start` by the features' and labels' warm-up, so that the
    # dataset's first row is at `start` (its indicators computed from the candles before it).
    read_from: datetime | None = None
    reason: str
    features: list[str] = Field(default_factory=list)
    candidate_start: datetime | None = None
    end: datetime | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        """The JSON kept in the job row (`metadata.training_window`)."""
        return self.model_dump(mode="json")


class RetrainingSpec(BaseModel):
    """One retraining request: which model types, why, and on which data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_type: JobKind
    model_types: tuple[str, ...]
    reason: str = Field("manual", min_length=1)
    data: DataSelection = DataSelection()
    window: TrainingWindow | None = None  # a drift-triggered job: how its window was chosen

    @field_validator("model_types", mode="before")
    @classmethod
    def _known_model_types(cls, value: Any) -> tuple[str, ...]:
        # Deferred: the table imports every model type's module.
        if isinstance(value, str) or not value:
            raise ValueError(f"model_types must be a non-empty list of model types, got {value!r}")
        unknown = [m for m in value if m not in MODEL_TYPES]
        if unknown:
            raise ValueError(f"unknown model types {unknown}; known: {sorted(MODEL_TYPES)}")
        return tuple(dict.fromkeys(value))

    @classmethod
    def create(
        cls,
        policy: Policy,
        model_types: Sequence[str] | None = None,
        reason: str = "manual",
        data: DataSelection | Mapping[str, Any] | None = None,
        now: datetime | None = None,
        window: TrainingWindow | None = None,
    ) -> RetrainingSpec:
        """A full retraining (`model_types` None: the policy's) or a partial one, on `data`
        over the policy's data settings, ending now (to the minute) unless `data` says when.

        `end` is fixed here, so a redelivered dataset step builds the same dataset (its id
        hashes the spec). Raises `InvalidRetrainingSpecError` naming the refused fields.
        """
        if isinstance(data, DataSelection):
            overrides = {k: v for k, v in data if v is not None}
        else:
            overrides = {k: v for k, v in (data or {}).items() if v is not None}
        defaults = {
            "exchange": policy.data.exchange,
            "symbols": list(policy.data.symbols),
            "timeframe": policy.data.timeframe,
            "lookback_days": policy.data.lookback_days,
            "end": policy.data.end or (now or utcnow()).replace(second=0, microsecond=0),
        }
        values = {
            "job_type": "full" if model_types is None else "partial",
            "model_types": list(policy.training.model_types) if model_types is None else model_types,
            "reason": reason,
            "data": defaults | overrides,
            "window": window,
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            errors = [SpecError(".".join(str(p) for p in e["loc"]), _reason(e)) for e in exc.errors()]
            raise InvalidRetrainingSpecError(errors) from None


def _reason(error: Any) -> str:
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
