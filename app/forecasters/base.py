"""The forecaster interface every model type implements, and its calibrated confidence.

A model type writes only its `Params` (typed hyperparameters: the policy's
`training.<type>` section), `_fit`, `_predict_return`, `_save` and `_load`; the base class
validates the params, checks inputs, calibrates the confidence on validation data, turns predicted returns into
directions and writes the state every forecaster shares (`forecaster.json`, plain JSON).
Every forecaster answers the same thing per (symbol, time): the predicted log return over
the label horizon, a direction (-1/0/1, flat inside the round-trip fee) and a confidence in
[0, 1] = the calibrated probability that the predicted direction is right.

With a target other than the return (`ForecastSpec.target`, types with `FITS_TARGETS`), the
"predicted return" is the model's output in the target's units: the net-of-fee class value
(about P(up) - P(down); direction = its sign), or the return relative to the market (the
direction is then a long/short position against the equal-weighted market, and scoring
trades it so). With `min_confidence`, a row under it gets direction 0 (abstention).
"""

from __future__ import annotations

import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from app.forecasters.targets import TARGETS, market_relative_return

STATE_FILE = "forecaster.json"
FORMAT_VERSION = 1
TARGET = "future_return"


def _as_set(threshold: float) -> str:
    """A policy threshold as it was set: 0.50, 0.52, 0.999."""
    text = f"{threshold:.2f}"
    return text if float(text) == threshold else f"{threshold:.6g}"


def _below(value: float, threshold: float) -> str:
    """`value` (< threshold) with two decimals, or as many more as it takes to read below it."""
    for digits in range(2, 7):
        text = f"{value:.{digits}f}"
        if float(text) < threshold:
            return text
    return repr(value)


# Progress inside a fit: (unit, done, total), e.g. ("trees", 120, 300) or ("steps", 40, 100). `total` is
# the budget (the most boosting rounds or training steps); once the fit has ended, a last call has
# done == total == what was built (an early stop lowers the total to it). Called often (each tree, each
# step): the receiver throttles what it records.
FitProgress = Callable[[str, int, int], None]


def no_fit_progress(unit: str, done: int, total: int) -> None:
    return None


class ForecasterInputError(ValueError):
    """A frame handed to a forecaster lacks what it needs (names the columns)."""


class ModelParams(BaseModel):
    """A model type's hyperparameters, defaults and bounds: its section of the policy's training.

    An unknown key is refused (a typo is an error, not a knob silently left at its default).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass
class ForecastSpec:
    """What a forecaster is told: its inputs, the label horizon and how to run."""

    feature_columns: list[str]
    horizon: int
    params: dict[str, Any] = field(default_factory=dict)  # validated by the type's Params
    seed: int = 42
    threads: int = 1
    device: str = "cpu"  # "cpu" or "cuda"
    fee_pct: float = 0.1  # per side, percent (Policy.labels.fee_pct)
    target: str = "return"  # what the model learns (Policy.training.target; targets.TARGETS)
    demean_target: bool = False  # the training part's mean removed from the target
    min_confidence: float = 0.0  # below this calibrated confidence a row is not traded (direction 0)

    @property
    def dead_zone(self) -> float:
        """A move smaller than the round-trip fee is flat: data_pipeline.labels.dead_zone's rule."""
        return math.log1p(2 * self.fee_pct / 100)


def direction_correct(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """1.0 where the signs agree, 0.0 where they differ, 0.5 where either is exactly zero."""
    p, a = np.sign(predicted), np.sign(actual)
    return np.where((p == 0) | (a == 0), 0.5, (p == a).astype(float))


@dataclass
class ConfidenceCalibrator:
    """Isotonic map |predicted return| -> P(direction correct), stored as its breakpoints."""

    x: list[float] = field(default_factory=lambda: [0.0])
    y: list[float] = field(default_factory=lambda: [0.5])

    @classmethod
    def fit(cls, predicted: np.ndarray, actual: np.ndarray, min_rows: int = 20) -> ConfidenceCalibrator:
        from sklearn.isotonic import IsotonicRegression  # deferred: scikit-learn is heavy to import

        keep = np.isfinite(predicted) & np.isfinite(actual) & (actual != 0)
        magnitude, hit = np.abs(predicted[keep]), direction_correct(predicted[keep], actual[keep])
        if len(hit) < min_rows or np.ptp(magnitude) == 0:
            return cls([0.0], [float(hit.mean()) if len(hit) else 0.5])
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        iso.fit(magnitude, hit)
        return cls([float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_])

    def __call__(self, predicted: np.ndarray) -> np.ndarray:
        return np.clip(np.interp(np.abs(predicted), self.x, self.y), 0.0, 1.0)


class Forecaster(ABC):
    MODEL_TYPE: ClassVar[str] = ""
    NEEDS_GPU: ClassVar[bool] = False  # routes training to the gpu queue
    CAN_USE_GPU: ClassVar[bool] = False  # trains on CUDA when the worker has it
    SUPPORTS_EXOGENOUS: ClassVar[bool] = True  # uses the engineered features
    FITS_TARGETS: ClassVar[bool] = False  # learns `fit_target` (any of targets.TARGETS, demeaned or not)
    LIBRARIES: ClassVar[tuple[str, ...]] = ()  # whose versions go into the manifest
    Params: ClassVar[type[ModelParams]] = ModelParams  # the type's hyperparameters (policy.training.<type>)
    params: ModelParams  # spec.params, validated and defaulted by Params
    TINY_PARAMS: ClassVar[dict[str, Any]] = {}  # a fit of seconds on a few hundred rows (contract tests)

    def __init__(self, spec: ForecastSpec) -> None:
        self.spec = spec
        if spec.target not in TARGETS:
            raise ForecasterInputError(f"{self.MODEL_TYPE}: unknown target {spec.target!r}; known: {list(TARGETS)}")
        if not self.FITS_TARGETS and (spec.target != "return" or spec.demean_target):
            raise ForecasterInputError(
                f"{self.MODEL_TYPE}: learns only the plain return target, not {spec.target!r}"
                f"{' demeaned' if spec.demean_target else ''}"
            )
        if not 0.0 <= spec.min_confidence <= 1.0:
            raise ForecasterInputError(
                f"{self.MODEL_TYPE}: min_confidence must be in [0, 1], got {spec.min_confidence}"
            )
        self.params = self.Params.model_validate(spec.params)
        self.calibrator = ConfidenceCalibrator()
        self.fitted = False
        self.extra_state: dict[str, Any] = {}  # model-type state that is plain JSON
        self.fit_progress: FitProgress = no_fit_progress  # set for the length of `fit`; `_fit` reports to it
        self.timings: dict[str, float] = {}  # seconds of the last fit: "fit", "calibration" (not saved)

    # ----------------------------------------------------------------- what a type writes

    @abstractmethod
    def _fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> None: ...

    @abstractmethod
    def _predict_return(self, frame: pd.DataFrame, history: pd.DataFrame | None) -> np.ndarray: ...

    @abstractmethod
    def _save(self, directory: Path) -> None: ...

    @abstractmethod
    def _load(self, directory: Path) -> None: ...

    # ----------------------------------------------------------------- shared plumbing

    def raw_target(self, frame: pd.DataFrame) -> np.ndarray:
        """The spec's target of each row of `frame` (labels needed), before any mean is removed."""
        if self.spec.target == "net_of_fee_class":
            if "direction" not in frame.columns:
                raise ForecasterInputError(f"{self.MODEL_TYPE}: target net_of_fee_class needs the labels' direction")
            return frame["direction"].to_numpy(dtype=np.float64)
        if self.spec.target == "market_relative":
            return market_relative_return(frame, TARGET)
        return frame[TARGET].to_numpy(dtype=np.float64)

    def fit_target(self, frame: pd.DataFrame) -> np.ndarray:
        """What the model learns on `frame`: the spec's target, less the training mean when demeaned."""
        return self.raw_target(frame) - float(self.extra_state.get("target_mean", 0.0))

    def outcome(self, frame: pd.DataFrame) -> np.ndarray:
        """The return a row's decision earns: the label, or relative to the market for that target."""
        if self.spec.target == "market_relative":
            return market_relative_return(frame, TARGET)
        return frame[TARGET].to_numpy(dtype=np.float64)

    def decide(self, predicted: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """Direction -1/0/1 of each forecast: outside the dead zone (a class target: its sign), and
        0 where the calibrated confidence is below `spec.min_confidence` (abstention)."""
        zone = 0.0 if self.spec.target == "net_of_fee_class" else self.spec.dead_zone
        direction = np.where(predicted > zone, 1, np.where(predicted < -zone, -1, 0))
        if self.spec.min_confidence > 0:
            direction = np.where(confidence < self.spec.min_confidence, 0, direction)
        return direction

    def abstain_reason(self, confidence: float) -> str | None:
        """Why `decide` abstains on a row of this calibrated confidence (its direction is 0 whatever
        the forecast), or None where it does not: "confidence 0.47 below min_confidence 0.50"."""
        threshold = self.spec.min_confidence
        if threshold <= 0 or not confidence < threshold:
            return None
        return f"confidence {_below(confidence, threshold)} below min_confidence {_as_set(threshold)}"

    def required_columns(self) -> list[str]:
        return ["symbol", "timestamp", *self.spec.feature_columns]

    def check_frame(self, frame: pd.DataFrame, where: str, with_target: bool = False) -> None:
        needed = self.required_columns() + ([TARGET] if with_target else [])
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ForecasterInputError(f"{self.MODEL_TYPE}: the {where} frame lacks columns {missing[:10]}")
        if frame.empty:
            raise ForecasterInputError(f"{self.MODEL_TYPE}: the {where} frame has no rows")

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame, progress: FitProgress | None = None) -> Forecaster:
        """Fit on `train` (early stopping on `valid`), then calibrate confidence on `valid`; `progress`
        hears the trees or steps built so far (`FitProgress`)."""
        self.check_frame(train, "training", with_target=True)
        self.check_frame(valid, "validation", with_target=True)
        self.extra_state.pop("target_mean", None)
        if self.spec.demean_target:
            self.extra_state["target_mean"] = float(np.nanmean(self.raw_target(train)))
        started = time.perf_counter()
        self.fit_progress = progress or no_fit_progress
        try:
            self._fit(train, valid)
        finally:
            self.fit_progress = no_fit_progress  # the model keeps no reference to the caller's recorder
        self.fitted = True
        fitted = time.perf_counter()
        rows = self.calibration_rows(len(valid))
        if rows is None:
            predicted, actual = self._predict_return(valid, train), self.outcome(valid)
        else:  # a sample: its rows' context is the validation rows before them, then the training rows
            sample = valid.iloc[rows]
            columns = self.required_columns()
            context = self.context_rows()
            before = train[columns] if context is None else train[columns].groupby("symbol", sort=False).tail(context)
            predicted = self._predict_return(sample, pd.concat([before, valid[columns]], ignore_index=True))
            actual = self.outcome(valid)[rows]  # the whole frame's outcome (a market-relative one needs every symbol)
        self.calibrator = ConfidenceCalibrator.fit(predicted, actual)
        self.timings = {"fit": fitted - started, "calibration": time.perf_counter() - fitted}
        return self

    def context_rows(self) -> int | None:
        """How many earlier rows of its symbol a prediction reads (None: any number)."""
        return None

    def calibration_rows(self, valid_rows: int) -> np.ndarray | None:
        """Positions of the validation rows that calibrate the confidence (sorted), or None for all."""
        return None

    def scoring_symbols(self, test: pd.DataFrame) -> list[str] | None:
        """The symbols whose test rows score this model, or None for every row (a type whose
        predictions are costly scores a sample of whole series; see NeuralParams.score_rows)."""
        return None

    def predict_return(self, frame: pd.DataFrame, history: pd.DataFrame | None = None) -> np.ndarray:
        if not self.fitted:
            raise RuntimeError(f"{self.MODEL_TYPE}: predict called before fit or load")
        self.check_frame(frame, "prediction")
        values = np.asarray(self._predict_return(frame, history), dtype=float)
        return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)

    def predict(self, frame: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per input row: `predicted_return`, `direction` (-1/0/1), `confidence` in [0, 1].

        `history` (earlier rows of the same symbols) gives sequence models their context;
        the tree models look at each row alone and ignore it.
        """
        predicted, direction, confidence = self.predict_arrays(frame, history)
        return pd.DataFrame(
            {"predicted_return": predicted, "direction": direction, "confidence": confidence}, index=frame.index
        )

    def predict_arrays(
        self, frame: pd.DataFrame, history: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`predict` as three arrays (predicted return, direction, confidence): no frame built."""
        predicted = self.predict_return(frame, history)
        confidence = self.calibrator(predicted)
        return predicted, self.decide(predicted, confidence), confidence

    def save(self, directory: str | Path) -> list[str]:
        """Write the model in its library's format plus `forecaster.json`; return file names."""
        if not self.fitted:
            raise RuntimeError(f"{self.MODEL_TYPE}: nothing to save before fit")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save(directory)
        state = {
            "format_version": FORMAT_VERSION,
            "model_type": self.MODEL_TYPE,
            "spec": asdict(self.spec),
            "calibrator": asdict(self.calibrator),
            "extra_state": self.extra_state,
        }
        (directory / STATE_FILE).write_text(json.dumps(state, indent=1))
        return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())

    @classmethod
    def load(cls, directory: str | Path) -> Forecaster:
        """Rebuild a saved forecaster. Call only on files whose hashes were checked."""
        directory = Path(directory)
        state = json.loads((directory / STATE_FILE).read_text())
        if state.get("model_type") != cls.MODEL_TYPE:
            raise ForecasterInputError(
                f"{directory}: saved model type {state.get('model_type')!r}, expected {cls.MODEL_TYPE!r}"
            )
        if state.get("format_version", 0) > FORMAT_VERSION:
            raise ForecasterInputError(f"{directory}: format {state['format_version']} is newer than this code")
        forecaster = cls(ForecastSpec(**state["spec"]))
        forecaster.calibrator = ConfidenceCalibrator(**state["calibrator"])
        forecaster.extra_state = state.get("extra_state", {})
        forecaster._load(directory)
        forecaster.fitted = True
        return forecaster
