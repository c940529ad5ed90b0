"""The live path's per-process state: loaded model pairs, the policy, symbol windows (`ModelCache`)."""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from app.core.artifacts import ArtifactIntegrityError, ArtifactNotFoundError
from app.core.db.models import ModelStatusHistory
from app.core.policy import Policy
from app.model_registry import ModelRecord, ModelRegistry
from app.model_training.storage import load_forecaster
from app.prediction.pool import live_engine
from app.prediction.sql import live_model_ids
from app.prediction.types import ModelIntegrityError

if TYPE_CHECKING:
    from app.core.container import Container
    from app.forecasters import Forecaster


log = logging.getLogger(__name__)

_CACHE_KEY = "prediction_models"
MAX_WINDOWS = 1024  # symbols (or distinct request candle sets) whose window a process keeps
Db = Session | Connection  # the reads and writes here are Core statements: either runs them


@dataclass
class LoadedModel:
    record: ModelRecord
    forecaster: Forecaster
    lock: threading.Lock = field(default_factory=threading.Lock)  # boosters are not all thread-safe

    def predict(self, frame: pd.DataFrame, history: pd.DataFrame) -> dict[str, Any]:
        with self.lock:
            predicted, direction, confidence = self.forecaster.predict_arrays(frame, history)
        reason = self.forecaster.abstain_reason(float(confidence[-1]))
        return {
            "predicted_return": float(predicted[-1]),
            "direction": int(direction[-1]),
            "confidence": float(confidence[-1]),
            # Direction 0 because the calibrated confidence is under the policy's min_confidence.
            "abstained": reason is not None,
            "abstain_reason": reason,
        }


@dataclass(frozen=True)
class ModelPair:
    active: LoadedModel
    shadow: LoadedModel | None

    @property
    def ids(self) -> tuple[str, str | None]:
        return self.active.record.model_id, self.shadow.record.model_id if self.shadow else None


@dataclass
class Window:
    """One symbol's features (the last row, and the rows before it) and each model's prediction of the last row."""

    last: pd.DataFrame
    history: pd.DataFrame
    at: datetime  # close time of the last candle
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prediction(self, model: LoadedModel) -> dict[str, Any]:
        """The model's prediction of the last row: computed once per window and model."""
        model_id = model.record.model_id
        cached = self.predictions.get(model_id)
        if cached is None:
            with self.lock:
                cached = self.predictions.get(model_id)
                if cached is None:
                    cached = self.predictions[model_id] = model.predict(self.last, self.history)
        return dict(cached)


class ModelCache:
    """The process's live state: loaded models per type, the policy, symbol windows. Thread-safe."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._pairs: dict[str, ModelPair] = {}
        self._lock = threading.Lock()
        self.policy: tuple[int, Policy] | None = None
        self._windows: OrderedDict[tuple[Any, ...], Window] = OrderedDict()
        self._windows_lock = threading.Lock()
        self._engine: Engine | None = None
        # Models whose artifact failed its check (model id -> why): not read again by this
        # process, so a broken artifact costs one read, not one per request.
        self._broken: dict[str, str] = {}
        self._fallbacks: dict[str, ModelPair] = {}  # model type -> the pair serving for a broken ACTIVE
        self.loads = 0  # models this process has loaded from their artifacts (a preload's proof, the tests')

    @property
    def engine(self) -> Engine:
        """The live path's own pool on PostgreSQL (`app.prediction.pool`), else the container's engine."""
        if self._engine is None:
            if self.container.engine.dialect.name != "postgresql":
                return self.container.engine
            with self._lock:
                if self._engine is None:
                    self._engine = live_engine(self.container.settings.database_url)
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def pair(self, model_type: str, active_id: str, shadow_id: str | None) -> ModelPair:
        """The loaded pair for these ids, loading (once, under the lock) what is not loaded yet.

        An ACTIVE model failing its artifact check raises ModelIntegrityError; a SHADOW model
        failing it is left out (its test pauses; the live answer does not fail)."""
        if active_id in self._broken:
            raise ModelIntegrityError(active_id, self._broken[active_id])
        if shadow_id in self._broken:
            shadow_id = None
        current = self._pairs.get(model_type)
        if current is not None and current.ids == (active_id, shadow_id):
            return current
        with self._lock:
            current = self._pairs.get(model_type)
            if current is not None and current.ids == (active_id, shadow_id):
                return current
            loaded = {m.record.model_id: m for m in ([current.active, current.shadow] if current else []) if m}
            active = loaded.get(active_id) or self._load(active_id)
            shadow = None
            if shadow_id:
                try:
                    shadow = loaded.get(shadow_id) or self._load(shadow_id)
                except ModelIntegrityError:
                    log.error("shadow model %s left out: %s", shadow_id, self._broken[shadow_id])
            pair = ModelPair(active=active, shadow=shadow)
            self._pairs[model_type] = pair
            log.info("prediction models for %s: active %s, shadow %s", model_type, active_id, shadow_id)
            # Long-lived objects (libraries, models) out of the collector's way: a full collection
            # then scans what requests allocate, not the whole process (a p99 of tens of ms otherwise).
            gc.collect()
            gc.freeze()
            return pair

    def _load(self, model_id: str) -> LoadedModel:
        record = ModelRegistry(self.container).get_model(model_id)
        self.loads += 1
        try:
            return LoadedModel(record, load_forecaster(self.container, record))
        except (ArtifactIntegrityError, ArtifactNotFoundError) as exc:
            message = f"model {model_id} ({record.model_type}) fails its artifact check: {exc}"
            self._broken[model_id] = message
            log.error("%s", message)
            raise ModelIntegrityError(model_id, message) from None

    def fallback_pair(self, model_type: str, broken_id: str) -> ModelPair:
        """A pair (no shadow) of the newest earlier ACTIVE version of the type whose artifact is
        intact, serving while `broken_id` fails its check (`clm_config.integrity_fallback`)."""
        kept = self._fallbacks.get(model_type)
        if kept is not None and kept.active.record.model_id not in self._broken:
            return kept
        with self.container.session() as session:
            earlier = session.scalars(
                select(ModelStatusHistory.model_id)
                .where(ModelStatusHistory.model_type == model_type, ModelStatusHistory.new_status == "ACTIVE")
                .order_by(ModelStatusHistory.changed_at.desc(), ModelStatusHistory.id.desc())
            ).all()
        with self._lock:
            for model_id in dict.fromkeys(earlier):
                if model_id == broken_id or model_id in self._broken:
                    continue
                try:
                    pair = ModelPair(active=self._load(model_id), shadow=None)
                except (ModelIntegrityError, LookupError):
                    continue
                log.warning("%s served by %s: %s", model_type, model_id, self._broken[broken_id])
                self._fallbacks[model_type] = pair
                return pair
        raise ModelIntegrityError(broken_id, f"{self._broken[broken_id]}; no earlier intact version to fall back to")

    def refresh(self, model_type: str) -> None:
        """Load the type's current ACTIVE and SHADOW models now (on `model.promoted`)."""
        with self.container.session() as session:
            ids = live_model_ids(session, model_type)
        if ids[0] is not None:
            self.pair(model_type, ids[0], ids[1])

    def window(self, key: tuple[Any, ...]) -> Window | None:
        with self._windows_lock:
            found = self._windows.get(key)
            if found is not None:
                self._windows.move_to_end(key)
            return found

    def clear_windows(self) -> None:
        """Forget every cached window (the benchmark's cold path; tests)."""
        with self._windows_lock:
            self._windows.clear()

    def keep_window(self, key: tuple[Any, ...], window: Window) -> Window:
        """Store `window` under `key` (or return the one another thread stored first)."""
        with self._windows_lock:
            kept = self._windows.setdefault(key, window)
            self._windows.move_to_end(key)
            # One window per symbol: a newer key of the same symbol replaces the older one.
            for old in [k for k in self._windows if k[:2] == key[:2] and k != key]:
                del self._windows[old]
            while len(self._windows) > MAX_WINDOWS:
                self._windows.popitem(last=False)
            return kept


def model_cache(container: Container) -> ModelCache:
    cache = container.extras.get(_CACHE_KEY)
    if cache is None:
        cache = container.extras.setdefault(_CACHE_KEY, ModelCache(container))
    return cache  # type: ignore[no-any-return]
