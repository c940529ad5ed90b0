"""Shared plumbing of the neuralforecast models: return series, windows, quiet trainers.

Each symbol's per-candle return series is one neuralforecast series (`unique_id` = symbol,
`ds` = the candle's position, so exchange outages do not confuse the frequency). A
prediction for a row is the sum of the `h` forecast returns from the window of history
ending at that row: the log return over the label horizon. Many rows are predicted in one
call by giving every window its own `unique_id`. `import neuralforecast` costs seconds, so
it happens inside the methods only.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from app.forecasters.base import FitProgress, Forecaster, ForecasterInputError, ModelParams

NF_DIR = "neuralforecast"
# Names the data pipeline may give the one-candle log return (the series the models see).
RETURN_COLUMNS = ("log_return_1", "return_1", "ret_1", "logret_1")


def find_return_column(columns: list[str]) -> str:
    for name in RETURN_COLUMNS:
        if name in columns:
            return name
    raise ForecasterInputError(f"no one-candle return column among the features (looked for {RETURN_COLUMNS})")


DEFAULT_EXOG = ("rsi_14", "rvol_12", "volume_rel_12", "macd_hist_norm")
# Windows per forward pass when predicting (series per inference batch): large batches are what make
# a CPU fast at inference; neuralforecast's default (the training batch_size, 32) costs ~30 ms a batch.
INFERENCE_BATCH = 2048
# Training windows per segment of a series (see NeuralForecaster._segments).
SEGMENT_WINDOWS = 512
# Windows handed to one `NeuralForecast.predict` call: bounds the long frame of contexts it builds.
PREDICT_CHUNK = 65536


class NeuralParams(ModelParams):
    """What every neuralforecast model here takes; a type adds its own (PatchTST's patches)."""

    input_size: int = Field(48, ge=2)  # candles of context per forecast
    max_steps: int = Field(100, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    batch_size: int = Field(32, ge=1)
    early_stop_patience_steps: int = Field(5, ge=-1)
    val_check_steps: int = Field(20, ge=1)
    windows_batch_size: int = Field(1024, ge=1)  # windows sampled per step (neuralforecast's default)
    # Validation rows whose predictions calibrate the confidence: a seeded sample of this many
    # (isotonic regression needs thousands, not every window of every series); 0 = every row.
    calibration_rows: int = Field(20_000, ge=0)
    # Test rows scored per fit: the whole series of a seeded sample of symbols holding about this
    # many rows (the same symbols in every fold; the baselines are scored on the same rows); 0 = all.
    score_rows: int = Field(50_000, ge=0)


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """No banners ("GPU available", "Seed set") and no library deprecation chatter."""
    import pytorch_lightning  # noqa: F401  (sets its loggers to INFO on import; we lower them after)

    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        yield


@cache
def _steps_callback_class() -> type:
    """A PyTorch Lightning callback (neuralforecast trains with Lightning), built once Lightning is imported."""
    import pytorch_lightning as pl  # deferred: heavy, as above

    class StepsDone(pl.Callback):
        """Reports the training steps done of `max_steps` after every batch, and the steps done when
        training ends (early stopping may end it sooner)."""

        def __init__(self, report: FitProgress) -> None:
            self.report = report

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            self.report("steps", int(trainer.global_step), int(trainer.max_steps))

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.report("steps", int(trainer.global_step), int(trainer.global_step))

    return StepsDone


class NeuralForecaster(Forecaster):
    NEEDS_GPU = True
    CAN_USE_GPU = True
    LIBRARIES = ("neuralforecast", "torch", "pytorch_lightning")
    NF_MODEL: ClassVar[str] = ""  # class name in neuralforecast.models
    EXOG_COUNT: ClassVar[int] = 4  # "a few" historical features for models that take them
    Params = NeuralParams
    params: NeuralParams

    # ----------------------------------------------------------------- per-type hooks

    def model_kwargs(self) -> dict[str, Any]:
        """Arguments of the neuralforecast model beyond the common ones."""
        return {}

    def uses_exogenous(self) -> bool:
        """Whether this model gets the historical features (a type may make it a param)."""
        return self.SUPPORTS_EXOGENOUS

    # ----------------------------------------------------------------- inputs

    @property
    def return_column(self) -> str:
        return str(self.extra_state["return_column"])

    @property
    def exog_columns(self) -> list[str]:
        return list(self.extra_state.get("exog_columns", []))

    def _choose_inputs(self, train: pd.DataFrame) -> None:
        features = self.spec.feature_columns
        ret = find_return_column(features)
        exog: list[str] = []
        if self.uses_exogenous():
            preferred = [c for c in DEFAULT_EXOG if c in features] or [c for c in features if c != ret]
            exog = preferred[: self.EXOG_COUNT]
        columns = [ret, *exog]
        values = train[columns].to_numpy(dtype=float)
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        std[~np.isfinite(std) | (std == 0)] = 1.0
        mean[~np.isfinite(mean)] = 0.0
        mean[0] = 0.0  # returns are scaled, not centred: a forecast of 0 stays "no move"
        self.extra_state.update(
            return_column=ret, exog_columns=exog, mean=[float(v) for v in mean], std=[float(v) for v in std]
        )

    def _scaled(self, frame: pd.DataFrame) -> pd.DataFrame:
        columns = [self.return_column, *self.exog_columns]
        values = (frame[columns].to_numpy(dtype=float) - self.extra_state["mean"]) / self.extra_state["std"]
        out = pd.DataFrame(np.nan_to_num(values), columns=["y", *[f"x{i}" for i in range(len(self.exog_columns))]])
        out.insert(0, "symbol", frame["symbol"].to_numpy())
        out.insert(1, "timestamp", frame["timestamp"].to_numpy())
        return out

    # ----------------------------------------------------------------- library objects

    def _trainer_kwargs(self) -> dict[str, Any]:
        return {
            "accelerator": "gpu" if self.spec.device == "cuda" else "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "enable_checkpointing": False,
            "logger": False,  # with checkpoints off too, nothing lands in ./lightning_logs
        }

    def _build(self, early_stop: bool) -> Any:
        # deferred: neuralforecast and torch take seconds to import; only neural training needs them
        import neuralforecast.models as nf_models
        from neuralforecast import NeuralForecast

        params = self.params
        model_class = getattr(nf_models, self.NF_MODEL)
        hist = [f"x{i}" for i in range(len(self.exog_columns))]
        model = model_class(
            h=self.spec.horizon,
            input_size=params.input_size,
            max_steps=params.max_steps,
            learning_rate=params.learning_rate,
            batch_size=params.batch_size,
            windows_batch_size=params.windows_batch_size,
            val_check_steps=params.val_check_steps,
            early_stop_patience_steps=params.early_stop_patience_steps if early_stop else -1,
            random_seed=self.spec.seed,
            valid_batch_size=INFERENCE_BATCH,
            inference_windows_batch_size=INFERENCE_BATCH,
            **({"hist_exog_list": hist} if hist else {}),
            **self.model_kwargs(),
            **self._trainer_kwargs(),
        )
        return NeuralForecast(models=[model], freq=1)

    # ----------------------------------------------------------------- Forecaster

    def _fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> None:
        import torch  # deferred: heavy, as above

        torch.set_num_threads(max(1, self.spec.threads))
        self._choose_inputs(train)
        val_size = int(valid.groupby("symbol").size().min())
        early_stop = val_size >= self.spec.horizon and self.early_stopping_can_stop()
        # The validation rows go in only as early stopping's held-out tail (they calibrate the confidence after).
        series = pd.concat([self._scaled(train), self._scaled(valid)] if early_stop else [self._scaled(train)])
        series = series.sort_values(["symbol", "timestamp"], kind="stable")
        series["ds"] = series.groupby("symbol").cumcount()
        series = series.rename(columns={"symbol": "unique_id"}).drop(columns="timestamp")
        if not early_stop:
            series = self._segments(series)
        with _quiet_lightning():
            self.nf = self._build(early_stop)
            # Added to the built model's trainer arguments, not to its constructor's: the saved
            # hyperparameters never hold it, and it is taken out again after the fit.
            callbacks = self.nf.models[0].trainer_kwargs.setdefault("callbacks", [])
            steps = _steps_callback_class()(self.fit_progress)
            callbacks.append(steps)
            try:
                self.nf.fit(df=series, val_size=val_size if early_stop else 0)
            finally:
                callbacks.remove(steps)

    def _segments(self, series: pd.DataFrame) -> pd.DataFrame:
        """Each symbol's training series cut into overlapping segments of SEGMENT_WINDOWS windows,
        every training window in exactly one segment. neuralforecast builds every window of every
        series in a step's batch before sampling `windows_batch_size` of them: on whole series of
        months of 5m candles that is gigabytes a step; on segments, a few megabytes (and a batch of
        segments spans more of the history than a batch of whole series)."""
        window = self.params.input_size + self.spec.horizon
        values = [c for c in series.columns if c not in ("unique_id", "ds")]
        pieces, names = [], []
        for symbol, group in series.groupby("unique_id", sort=False):
            data = group[values].to_numpy()
            starts = range(0, max(1, len(data) - window + 1), SEGMENT_WINDOWS)
            for k, start in enumerate(starts):
                pieces.append(data[start : start + SEGMENT_WINDOWS + window - 1])
                names.append(f"{symbol}#{k}")
        lengths = [len(p) for p in pieces]
        out = pd.DataFrame(np.concatenate(pieces), columns=values)
        out.insert(0, "unique_id", np.repeat(names, lengths))
        out.insert(1, "ds", np.concatenate([np.arange(n) for n in lengths]))
        return out

    def context_rows(self) -> int | None:
        return self.params.input_size

    def calibration_rows(self, valid_rows: int) -> np.ndarray | None:
        wanted = self.params.calibration_rows
        if not wanted or valid_rows <= wanted:
            return None
        return np.sort(np.random.default_rng(self.spec.seed).choice(valid_rows, wanted, replace=False))

    def scoring_symbols(self, test: pd.DataFrame) -> list[str] | None:
        wanted = self.params.score_rows
        if not wanted or len(test) <= wanted:
            return None
        counts = test["symbol"].value_counts()
        # A fixed order of the symbols (by hash, not by name or size): every fold takes the same ones.
        ordered = sorted(counts.index, key=lambda s: hashlib.sha256(f"{self.spec.seed}:{s}".encode()).hexdigest())
        chosen, rows = [], 0
        for symbol in ordered:
            if rows >= wanted:
                break
            chosen.append(symbol)
            rows += int(counts[symbol])
        return sorted(chosen)

    def early_stopping_can_stop(self) -> bool:
        """Whether early stopping could ever end this fit. Lightning stops after `patience` validation
        checks without improvement, so a fit with no more than `patience` checks in its step budget
        (the defaults: 100 steps, a check every 20, patience 5) would predict every validation
        window of every series at each check for nothing (the weights are not restored to the best
        check either); such a fit skips validation."""
        params = self.params
        checks = params.max_steps // params.val_check_steps
        return params.early_stop_patience_steps > 0 and checks > params.early_stop_patience_steps

    def _windows(self, frame: pd.DataFrame, history: pd.DataFrame | None) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        """One small series per row of `frame`: its last `input_size` rows of context, in chunks of
        at most PREDICT_CHUNK series (with the rows of `frame` they belong to)."""
        size = self.params.input_size
        scaled = self._scaled(frame)
        scaled["_row"] = np.arange(len(frame))
        if history is not None and len(history):
            past = self._scaled(history[history["symbol"].isin(frame["symbol"].unique())])
            past["_row"] = -1
            scaled = pd.concat([past, scaled], ignore_index=True)
        scaled = scaled.sort_values(["symbol", "timestamp", "_row"], kind="stable")
        scaled = scaled.drop_duplicates(["symbol", "timestamp"], keep="last")
        value_columns = ["y", *[c for c in scaled.columns if c.startswith("x")]]
        for _, group in scaled.groupby("symbol", sort=False):
            values, rows = group[value_columns].to_numpy(dtype=np.float32), group["_row"].to_numpy()
            # Left-pad by size-1 zero rows, then every row has a full window; the padding is cut below.
            padded = np.concatenate([np.zeros((size - 1, len(value_columns)), np.float32), values])
            every = np.lib.stride_tricks.sliding_window_view(padded, size, axis=0)  # (rows, columns, size)
            wanted = np.flatnonzero(rows >= 0)
            for start in range(0, len(wanted), PREDICT_CHUNK):
                ends = wanted[start : start + PREDICT_CHUNK]
                counts = np.minimum(ends + 1, size)
                keep = np.arange(size)[None, :] >= (size - counts)[:, None]
                windows = pd.DataFrame(every[ends].transpose(0, 2, 1)[keep], columns=value_columns)
                windows.insert(0, "unique_id", np.repeat(np.arange(len(ends)), counts))
                windows.insert(1, "ds", np.arange(len(windows)) - np.repeat(np.cumsum(counts) - counts, counts))
                yield windows, rows[ends]

    def _predict_return(self, frame: pd.DataFrame, history: pd.DataFrame | None) -> np.ndarray:
        out = np.zeros(len(frame))
        for windows, owners in self._windows(frame, history):
            with _quiet_lightning():
                forecast = self.nf.predict(df=windows)
            column = next(c for c in forecast.columns if c not in ("unique_id", "ds"))
            summed = forecast.groupby("unique_id")[column].sum()  # scaled returns add up over h
            out[owners[summed.index.to_numpy()]] = summed.to_numpy() * self.extra_state["std"][0]
        return out

    def _save(self, directory: Path) -> None:
        self.nf.save(str(directory / NF_DIR), save_dataset=False, overwrite=True)

    def _load(self, directory: Path) -> None:
        from neuralforecast import NeuralForecast  # deferred: heavy, as above

        with _quiet_lightning():
            self.nf = NeuralForecast.load(str(directory / NF_DIR))
        for model in self.nf.models:  # run where this process runs, not where it trained
            model.trainer_kwargs.update(self._trainer_kwargs())
