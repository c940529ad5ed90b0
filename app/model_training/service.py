"""Training as a service: dataset in, evaluated and stored model out (loading: storage.py).

`train_model` reads a built dataset, splits it by time (purged), fits the model type with
the policy's hyperparameters, evaluates it on the test part beside the baselines, runs
walk-forward cross-validation, and writes the files under `models/<type>/<run-id>/` with a
`manifest.json` listing every file's sha256. The registry keeps the manifest's path and
hash; `load_forecaster` checks that hash, then each file's, before any library reads them.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.core.clock import utcnow
from app.core.topics import ModelTrainingCompleted, ModelTrainingFailed, ModelTrainingStarted, TopicEvent
from app.data_pipeline import load_dataset
from app.forecasters import forecaster_class
from app.forecasters.base import FitProgress, Forecaster, ForecastSpec
from app.model_training.evaluation import Scored, report, score_model, timeframe_ms
from app.model_training.scoring import Bootstrap, baseline_gate, gate_baselines
from app.model_training.splits import Split, candle_ms, chronological_split, walk_forward_splits
from app.model_training.storage import json_safe, load_forecaster, store_forecaster
from app.model_training.walk_forward import cv_summary

if TYPE_CHECKING:
    from app.core.container import Container
    from app.core.policy import Policy

log = logging.getLogger(__name__)

NON_FEATURES = {"symbol", "timestamp", "future_return", "direction", "regime"}


@dataclass
class TrainedModel:
    """A stored, evaluated model: what the registry records (`ModelCandidate.from_trained`)."""

    model_type: str
    run_id: str
    file_path: str  # the manifest, relative to the artifact store
    sha256: str  # of the manifest, which holds every other file's sha256
    file_size_bytes: int
    manifest: dict[str, Any]
    metrics: dict[str, Any]
    feature_set_id: str | None
    feature_count: int
    training_config: dict[str, Any]
    training_data_range: dict[str, Any]
    artifact_dir: str
    dataset_id: str
    job_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Seconds per stage of the training: load, fit, calibration, scoring, cross_validation, artifact_write
    stage_seconds: dict[str, float] = field(default_factory=dict)


def resolve_device(setting: str) -> str:
    """settings.device ("auto", "cpu", "cuda") -> "cpu" or "cuda"."""
    if setting not in ("auto", "cpu", "cuda"):
        raise ValueError(f"CLM_DEVICE must be auto, cpu or cuda, not {setting!r}")
    if setting != "auto":
        return setting
    import torch  # deferred: torch is heavy and only this decision needs it here

    return "cuda" if torch.cuda.is_available() else "cpu"


def dataset_features(frame: pd.DataFrame, manifest: dict[str, Any]) -> list[str]:
    listed = manifest.get("feature_columns")
    columns = list(listed) if listed else [c for c in frame.columns if c not in NON_FEATURES]
    missing = [c for c in columns if c not in frame.columns]
    if missing or not columns:
        raise ValueError(f"dataset lacks its feature columns {missing[:10] or '(none listed)'}")
    return columns


def label_settings(manifest: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """The labels the dataset was built with (its manifest), else the policy's."""
    labels = manifest.get("label_config") or manifest.get("labels") or {}
    return {
        "horizon": int(labels.get("horizon", policy.labels.horizon)),
        "fee_pct": float(labels.get("fee_pct", policy.labels.fee_pct)),
    }


def part_range(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "start_ms": int(frame["timestamp"].min()),
        "end_ms": int(frame["timestamp"].max()),
        "rows": len(frame),
    }


def fit_and_score(
    model_class: type[Forecaster],
    spec: ForecastSpec,
    frame: pd.DataFrame,
    split: Split,
    step_ms: int,
    progress: FitProgress | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[Forecaster, Scored]:
    """Fit on the split's train part, early-stop and calibrate on its validation part, score its test part;
    `progress` hears the trees or steps built inside the fit; `timings` (when given) gains the seconds
    of "fit", "calibration" and "scoring"."""
    train, valid, test = frame.iloc[split.train], frame.iloc[split.valid], frame.iloc[split.test]
    model = model_class(spec).fit(train, valid, progress)
    started = time.perf_counter()
    # Everything before the test part is known at test time (the purged rows' features too).
    history = frame[frame["timestamp"] < test["timestamp"].min()]
    symbols = model.scoring_symbols(test)
    if symbols is not None:  # a type whose predictions are costly: whole series of a sample of symbols
        test, history = test[test["symbol"].isin(symbols)], history[history["symbol"].isin(symbols)]
        log.info("%s scored on %d of the test rows: symbols %s", model_class.MODEL_TYPE, len(test), symbols)
    scored, _ = score_model(model, test, history=history, step_ms=step_ms)
    if timings is not None:
        for stage, seconds in (model.timings | {"scoring": time.perf_counter() - started}).items():
            timings[stage] = timings.get(stage, 0.0) + seconds
    return model, scored


def fit_and_evaluate(
    model_class: type[Forecaster],
    spec: ForecastSpec,
    frame: pd.DataFrame,
    split: Split,
    step_ms: int,
    bootstrap: Bootstrap | None = None,
    progress: FitProgress | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[Forecaster, dict[str, Any]]:
    """`fit_and_score`, summarised: {"model": metrics, "baselines": {name: metrics}}."""
    model, scored = fit_and_score(model_class, spec, frame, split, step_ms, progress, timings)
    return model, report([scored], horizon=spec.horizon, step_ms=step_ms, bootstrap=bootstrap)


# A training's progress: (stage, done, total), e.g. ("fit", 0, 6): the first of 6 fits (the final fit and
# 5 folds), ("cv fold", 2, 5), ("storing", 1, 1); and inside each fit the forecaster's own reports
# (`FitProgress`: ("trees", 120, 300), ("steps", 40, 100)). The caller records it where it is seen.
Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def cross_validate(
    model_class: type[Forecaster],
    spec: ForecastSpec,
    frame: pd.DataFrame,
    folds: int,
    step_ms: int,
    bootstrap: Bootstrap | None = None,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Walk-forward folds: per metric the mean and spread (std) of the model and of persistence,
    each fold's headline figures, and the test parts pooled (`pooled`: with intervals)."""
    scored_folds = []
    splits = list(walk_forward_splits(frame, folds, purge=spec.horizon, step_ms=step_ms))
    for number, split in enumerate(splits, start=1):
        progress("cv fold", number, len(splits))
        _, scored = fit_and_score(model_class, spec, frame, split, step_ms, progress)
        scored_folds.append(scored)
    return cv_summary(scored_folds, horizon=spec.horizon, step_ms=step_ms, bootstrap=bootstrap)


def gate_verdict(cv: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """The baseline gate on the pooled walk-forward figures; when the policy turns it off, a loud pass."""
    settings = policy.clm_config.baseline_gate
    model = cv["pooled"]["model"]
    neutral = bool(model.get("market_neutral"))
    note = (
        "a market-neutral long/short book: compared with flat and with persistence traded market-neutral; "
        "buy-and-hold holds the market's beta, which the book hedges away"
        if neutral
        else ""
    )
    verdict = baseline_gate(
        {"model": model}, margin=settings.min_sharpe_margin, against=gate_baselines(neutral), note=note
    )
    out = verdict.to_dict() | {"enforced": settings.enabled, "margin": settings.min_sharpe_margin}
    if not settings.enabled:
        out["would_pass"], out["passed"] = verdict.passed, True
        out["reason"] = f"BASELINE GATE OFF (policy clm_config.baseline_gate.enabled=false): {verdict.reason}"
        log.warning("%s", out["reason"])
    return out


def target_settings(model_class: type[Forecaster], policy: Policy) -> dict[str, Any]:
    """The spec's target, demeaning and abstention from the policy's training section; a type that
    learns only the return (naive, the neural models) keeps the plain target but still abstains."""
    training = policy.training
    if model_class.FITS_TARGETS:
        return {
            "target": training.target,
            "demean_target": training.demean_target,
            "min_confidence": training.min_confidence,
        }
    return {"min_confidence": training.min_confidence}


def _publish(container: Container, event: TopicEvent) -> None:
    with container.session() as session:
        container.bus.publish(session, event)


@dataclass
class TrainingSetup:
    """A dataset made ready for one model type: rows in time order, the spec built from the policy."""

    frame: pd.DataFrame
    manifest: dict[str, Any]
    features: list[str]
    labels: dict[str, Any]
    params: dict[str, Any]
    spec: ForecastSpec
    step_ms: int


def time_ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows by (timestamp, symbol); a frame already in that order (a dataset whose symbols are
    listed alphabetically) is returned as it is, not copied."""
    stamps = frame["timestamp"].to_numpy()
    symbols = frame["symbol"].to_numpy()
    same_time = stamps[1:] == stamps[:-1]
    if (stamps[1:] >= stamps[:-1]).all() and (symbols[1:][same_time] > symbols[:-1][same_time]).all():
        return frame
    return frame.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def training_setup(
    container: Container,
    model_class: type[Forecaster],
    dataset_id: str,
    load: Any = load_dataset,
    before_ms: int | None = None,
) -> TrainingSetup:
    """Load the dataset (only its rows before `before_ms` when given) and build the model type's
    `ForecastSpec` from the policy (as every training does)."""
    model_type = model_class.MODEL_TYPE
    policy = container.policy_store.get()
    if before_ms is None:
        frame, dataset_manifest = load(container, dataset_id)
    else:
        frame, dataset_manifest = load(container, dataset_id, before_ms=before_ms)
    frame = time_ordered(frame)
    features = dataset_features(frame, dataset_manifest)
    labels = label_settings(dataset_manifest, policy)
    params_model = getattr(policy.training, model_type, None)
    params = params_model.model_dump() if params_model is not None else {}
    spec = ForecastSpec(
        feature_columns=features,
        horizon=labels["horizon"],
        params=params,
        seed=policy.training.seed,
        threads=container.settings.train_threads,
        device=resolve_device(container.settings.device) if model_class.CAN_USE_GPU else "cpu",
        fee_pct=labels["fee_pct"],
        **target_settings(model_class, policy),
    )
    step_ms = timeframe_ms(dataset_manifest["timeframe"]) if dataset_manifest.get("timeframe") else candle_ms(frame)
    return TrainingSetup(frame, dataset_manifest, features, labels, params, spec, step_ms)


def train_model(
    container: Container,
    model_type: str,
    dataset_id: str,
    job_id: str | None = None,
    progress: Progress = _no_progress,
    *,
    cross_validation: bool = True,
) -> TrainedModel:
    """Train one model type on a built dataset; store and return it (not yet registered).

    `cross_validation=False`: the final fit only; the walk-forward folds run as their own
    tasks (app/retraining/folds.py) and the job's callback adds their figures and the gate.
    """

    model_class = forecaster_class(model_type)
    run_id = f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    base_event = {"model_type": model_type, "dataset_id": dataset_id, "job_id": job_id, "run_id": run_id}
    _publish(container, ModelTrainingStarted(**base_event))
    started = time.monotonic()
    try:
        trained = _train(container, model_class, dataset_id, job_id, run_id, load_dataset, cross_validation, progress)
    except Exception as exc:
        _publish(container, ModelTrainingFailed(**base_event, error=f"{type(exc).__name__}: {exc}"))
        raise
    _publish(
        container,
        ModelTrainingCompleted(
            **base_event,
            duration_sec=round(time.monotonic() - started, 3),
            file_path=trained.file_path,
            sha256=trained.sha256,
            metrics={k: trained.metrics.get(k) for k in ("directional_accuracy", "rmse", "sharpe")},
        ),
    )
    return trained


def _train(
    container: Container,
    model_class: type[Forecaster],
    dataset_id: str,
    job_id: str | None,
    run_id: str,
    load_dataset: Any,
    cross_validation: bool = True,
    progress: Progress = _no_progress,
) -> TrainedModel:
    model_type = model_class.MODEL_TYPE
    policy = container.policy_store.get()
    clock = time.perf_counter()
    setup = training_setup(container, model_class, dataset_id, load_dataset)
    timings = {"load": time.perf_counter() - clock}
    frame, dataset_manifest, features, labels = setup.frame, setup.manifest, setup.features, setup.labels
    params, spec, step_ms = setup.params, setup.spec, setup.step_ms
    split = chronological_split(
        frame, policy.training.train_frac, policy.training.val_frac, purge=spec.horizon, step_ms=step_ms
    )
    bootstrap = Bootstrap(replicates=policy.clm_config.baseline_gate.bootstrap_replicates, seed=spec.seed)
    progress("fit", 0, 1 + (policy.training.cv_folds if cross_validation else 0))
    model, evaluation = fit_and_evaluate(model_class, spec, frame, split, step_ms, bootstrap, progress, timings)
    checks: dict[str, Any] = {}
    if cross_validation:
        clock = time.perf_counter()
        cv = cross_validate(model_class, spec, frame, policy.training.cv_folds, step_ms, bootstrap, progress)
        checks = {"cross_validation": cv, "gate": gate_verdict(cv, policy)}
        timings["cross_validation"] = time.perf_counter() - clock
    progress("storing", 1, 1)
    metrics = json_safe(
        {
            **evaluation["model"],
            "baselines": evaluation["baselines"],
            **checks,
            "device": spec.device,
        }
    )
    data_range = {
        "train": part_range(frame.iloc[split.train]),
        "validation": part_range(frame.iloc[split.valid]),
        "test": part_range(frame.iloc[split.test]),
        "symbols": sorted(frame["symbol"].unique().tolist()),
        "purge_candles": spec.horizon,
    }
    directory = f"models/{model_type}/{run_id}"
    clock = time.perf_counter()
    stored_manifest, manifest = store_forecaster(
        container,
        model,
        directory,
        {
            "run_id": run_id,
            "job_id": job_id,
            "dataset_id": dataset_id,
            "feature_set_id": dataset_manifest.get("feature_set_id"),
            "feature_columns": features,
            "label_settings": labels,
            "timeframe_ms": step_ms,
            "training_data_range": data_range,
            "hyperparameters": params,
            "seed": spec.seed,
            "metrics": metrics,
        },
    )
    timings["artifact_write"] = time.perf_counter() - clock
    return TrainedModel(
        model_type=model_type,
        run_id=run_id,
        file_path=stored_manifest.path,
        sha256=stored_manifest.sha256,
        file_size_bytes=stored_manifest.size_bytes,
        manifest=manifest,
        metrics=metrics,
        feature_set_id=dataset_manifest.get("feature_set_id"),
        feature_count=len(features),
        training_config={"hyperparameters": params, "label_settings": labels, "seed": spec.seed},
        training_data_range=data_range,
        artifact_dir=directory,
        dataset_id=dataset_id,
        job_id=job_id,
        stage_seconds={stage: round(seconds, 3) for stage, seconds in timings.items()},
    )


__all__ = [
    "TrainedModel",
    "TrainingSetup",
    "cross_validate",
    "fit_and_evaluate",
    "fit_and_score",
    "gate_verdict",
    "load_forecaster",
    "target_settings",
    "train_model",
    "training_setup",
]
