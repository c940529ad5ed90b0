"""Topics of the model lifecycle: data fetch, training, registry, shadow tests."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.core.topics.base import Json, TopicEvent

# --------------------------------------------------------------------------- data pipeline


class DataFetchStarted(TopicEvent):
    """Candles are about to be fetched for a range (only its missing parts are requested)."""

    topic = "data.fetch.started"
    producers = ("app.data_pipeline.fetcher",)

    exchange: str = Field(description="ccxt exchange id")
    symbols: list[str] = Field(description="symbols fetched (`BTC/USDT`)")
    timeframe: str = Field(description="candle interval (`5m`)")
    start_date: datetime = Field(description="first candle's open time (UTC)")
    end_date: datetime = Field(description="end of the range, exclusive (UTC)")
    start_ms: int = Field(description="`start_date` in ms since the epoch")
    end_ms: int = Field(description="`end_date` in ms since the epoch")
    missing_ranges: dict[str, list[list[int]]] = Field(
        description="per symbol, the [start_ms, end_ms) ranges not yet stored (the only ones requested)"
    )


class DataFetchCompleted(TopicEvent):
    """The range is stored; `rows` candles were read back from the store."""

    topic = "data.fetch.completed"
    producers = ("app.data_pipeline.fetcher",)

    exchange: str = Field(description="ccxt exchange id")
    symbols: list[str] = Field(description="symbols fetched")
    timeframe: str = Field(description="candle interval")
    rows: int = Field(description="candles of the range in the store now, all symbols")
    features: list[str] = Field(
        description="the value columns of each candle (features proper are engineered later, by the dataset builder)"
    )
    rows_fetched: int = Field(description="candles the exchange sent in this call")
    requests: int = Field(description="exchange requests made")
    duration_sec: float = Field(description="wall time of the fetch")


# --------------------------------------------------------------------------- model training


class ModelTrainingStarted(TopicEvent):
    """A model type starts training on a built dataset."""

    topic = "model.training.started"
    producers = ("app.model_training.service",)

    model_type: str = Field(description="`xgboost`, `lightgbm`, `nhits`, ...")
    job_id: str | None = Field(description="the retraining job (null: trained outside a job)")
    dataset_id: str = Field(description="the dataset trained on")
    run_id: str = Field(description="this training run (names the artifact directory)")


class ModelTrainingCompleted(ModelTrainingStarted):
    """A model is trained, evaluated and stored (not yet registered)."""

    topic = "model.training.completed"

    model_id: str | None = Field(
        None,
        description="the registry's id; null: training ends before registration names the model "
        "(`model.registered` carries it, with the same `job_id`)",
    )
    duration_sec: float = Field(description="wall time of training, evaluation and cross-validation")
    file_path: str = Field(description="the artifact manifest, relative to the artifact store")
    sha256: str = Field(description="of the manifest, which lists every file's sha256")
    metrics: dict[str, float | None] = Field(description="headline test metrics (directional_accuracy, rmse, sharpe)")


class ModelTrainingFailed(ModelTrainingStarted):
    """Training of a model type raised; the job records the error."""

    topic = "model.training.failed"

    error: str = Field(description="`ExceptionType: message`")


# --------------------------------------------------------------------------- model registry


class _ModelStatusEvent(TopicEvent):
    model_id: str = Field(description="`<model_type>_v<version>`")
    model_type: str = Field(description="the model's type")
    version: str = Field(description="version within its type")
    status: str = Field(description="status after the change (TRAINING, SHADOW, ACTIVE, RETIRED, REJECTED)")
    job_id: str | None = Field(description="the retraining job that trained it")
    reason: str | None = Field(description="why the status changed")


class ModelRegistered(_ModelStatusEvent):
    """A trained model is live: ACTIVE (first of its type) or SHADOW (to be shadow tested)."""

    topic = "model.registered"
    producers = ("app.model_registry.service",)
    consumers = ("app.shadow_tester.service:on_model_registered",)


class _Promotion(_ModelStatusEvent):
    previous_model_id: str | None = Field(description="the ACTIVE model it replaced")
    old_status: str = Field(description="status before the promotion (SHADOW, or RETIRED on a rollback)")
    new_status: str = Field(description="ACTIVE")


class ModelPromoted(_Promotion):
    """A model became the ACTIVE one of its type; the previous ACTIVE was retired."""

    topic = "model.promoted"
    producers = ("app.model_registry.service",)
    consumers = ("app.clm.manager:on_model_promoted", "app.prediction.service:on_model_promoted")


class ModelRetired(_ModelStatusEvent):
    """A model left service: RETIRED (replaced, superseded, by the operator) or REJECTED."""

    topic = "model.retired"
    producers = ("app.model_registry.service",)


class ClmModelPromoted(_Promotion):
    """The CLM's record of a promotion: the `model.promoted` payload, re-published under `clm.*`."""

    topic = "clm.model.promoted"
    producers = ("app.clm.manager",)


# --------------------------------------------------------------------------- shadow tester


class ShadowTestingStarted(TopicEvent):
    """A SHADOW model's test against the ACTIVE one begins."""

    topic = "shadow.testing.started"
    producers = ("app.shadow_tester.service",)

    model_id: str = Field(description="the SHADOW model (as `shadow_model_id`)")
    shadow_model_id: str = Field(description="the SHADOW model")
    active_model_id: str | None = Field(description="the ACTIVE model it is compared with")
    model_type: str = Field(description="their type")
    target_samples: int = Field(description="paired outcomes before the first decision (as `min_samples`)")
    min_samples: int = Field(description="the policy's `auto_promote_threshold.min_samples`")


class ShadowPromotionRecommended(TopicEvent):
    """The shadow test's decision is PROMOTE. It is published in the transaction that carries the
    decision out (`app.shadow_tester.promotion.carry_out`: promoted there when auto-promotion is
    on); it reports, no handler promotes."""

    topic = "shadow.promotion.recommended"
    producers = ("app.shadow_tester.promotion",)
    consumers = ("app.operations.alerts:check_on_event",)

    model_id: str = Field(description="the SHADOW model recommended")
    shadow_model_id: str = Field(description="the same")
    model_type: str = Field(description="its type")
    auto_promote: bool = Field(description="whether the policy promotes without review")
    metrics_comparison: Json = Field(
        description="`active` and `shadow` metrics, `improvement_pct`, `pnl_difference`, `p_value_better`"
    )
    evaluation: Json = Field(description="the whole `ShadowEvaluationResult`")


class ShadowPromoted(TopicEvent):
    """The shadow test promoted its model (after `model.promoted`)."""

    topic = "shadow.promoted"
    producers = ("app.shadow_tester.promotion",)

    model_id: str = Field(description="the promoted model")
    model_type: str = Field(description="its type")
    previous_model_id: str | None = Field(description="the ACTIVE model it replaced")
    final_metrics: Json = Field(description="the shadow's metrics at the decision")
    evaluation: Json = Field(description="the whole `ShadowEvaluationResult`")
