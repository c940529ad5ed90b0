"""The main run's configuration: market, replay length, and the small, fast policy it runs under.

Everything the run changes in the system goes through the policy (`policy_patch`, stored
with `PolicyStore.update` at the start and printed): fewer trees and neural steps so that
four trainings fit in a minute, and `auto_promote_threshold.min_samples` and `max_samples`
lowered so that a shadow test reaches its decision (looks at 24, 48 and 96 pairs: 1, 2 and
4 days of the engine's hourly calls, one symbol a call) inside the days of replay it has. The
paired test is block-robust (6-hour blocks of 15m candles with 12-candle labels), so a look
needs days, not hours, of pairs: 24 pairs are 4 blocks, 96 are 16.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from app.core.settings import REPO_ROOT

Source = Literal["synthetic", "files", "exchange"]
Loop = Literal["full", "scheduled", "frozen"]
SYNTHETIC_SYMBOLS = ("SYNA/USDT", "SYNB/USDT")
DEFAULT_START = datetime(2025, 1, 6)  # a Monday; any fixed date keeps the run deterministic


@dataclass(frozen=True)
class RunConfig:
    seed: int = 7
    source: Source = "synthetic"
    symbols: tuple[str, ...] = SYNTHETIC_SYMBOLS
    files: dict[str, str] = field(default_factory=dict)  # symbol -> CSV/Parquet path (source "files")
    # The files' timeframe when it is shorter than `timeframe` (5m files for a 15m run): their candles
    # are resampled to `timeframe`, complete buckets only (`app/data_pipeline/resample.py`). None: the same.
    file_timeframe: str | None = None
    # Source "files": the first candle of the history (None: the last history + replay days the files share).
    files_start: datetime | None = None
    exchange: str = "binance"  # ccxt id (source "exchange")
    timeframe: str = "15m"  # the drift checks need rows: 15m candles give them 4x as many as 1h
    decision_every: int = 4  # candles between trading decisions (hourly on 15m candles)
    start: datetime = DEFAULT_START  # first candle of the initial history (synthetic, exchange)
    history_days: float = 16.0  # candles before the replay (the first training_days of them are trained on)
    training_days: float = 12.0  # the policy's data.lookback_days: every training's window
    replay_days: float = 12.0  # candles replayed as live: the shift, 3 days of the new market, a 4-day test
    shift_after_days: float | None = 3.0  # into the replay: the synthetic market's shift (None: no shift)
    drift_checks_after_days: float = 2.0  # a first clean period before the scheduled drift checks start
    neural_every: int = 2  # the neural models are asked at every n-th decision (their inference is the slow part)
    min_shadow_samples: int = 24
    max_shadow_samples: int = 96  # the last look: promoted or rejected by then
    # clm_config.shadow_patience_days (None: the policy's 7): how long an automatic retraining leaves
    # a model type with a SHADOW under test alone. bench/clm_value.py sets it to cover its last look.
    shadow_patience_days: float | None = None
    balance_usd: float = 10_000.0
    report_path: Path | None = None
    quiet: bool = False
    # Small, fast hyperparameters (the policy's knobs), and the schedule of the specification.
    trees: int = 40
    # The baseline gate (clm_config.baseline_gate), off here and said so: see `policy_patch`.
    baseline_gate: bool = False
    neural_steps: int = 6
    schedule_interval_days: float = 7.0  # the specification's weekly retraining
    retraining_cooldown_hours: float = 96.0  # one drift-triggered retraining, not one per 6-hour check
    drift_check_interval_hours: float = 6.0
    drift_lookback_days: float = 3.0  # the current window of a feature drift check (288 candles per symbol)
    drift_min_rows: int = 200
    # A drift-started retraining trains on the market since the change point, and waits until it has
    # this many days of it (clm_config.drift_window: short_window "wait", min_window_days).
    new_market_days: float = 3.0
    # Which continuous learning runs (bench/clm_value.py): "full" (drift, performance, shadow,
    # promotion), "scheduled" (the weekly retraining and its shadow tests only), "frozen" (none).
    loop: Loop = "full"
    model_types: tuple[str, ...] | None = None  # None: the policy's
    # clm_config.retired_versions_kept (None: the policy's 5). bench/clm_value.py replays months and then
    # scores every model that was ACTIVE (app/simulation/counterfactual.py): their files must survive retention.
    retired_versions_kept: int | None = None

    def __post_init__(self) -> None:
        if self.source not in ("synthetic", "files", "exchange"):
            raise ValueError(f"source: {self.source!r} is not synthetic, files or exchange")
        if not self.symbols:
            raise ValueError("symbols: at least one symbol is needed")
        if self.source == "files":
            absent = [s for s in self.symbols if s not in self.files]
            if absent:
                raise ValueError(f"source 'files' needs a file for every symbol; none for {absent}")
        if self.history_days <= 0 or self.replay_days <= 0:
            raise ValueError("history_days and replay_days must be positive")
        if self.shift_after_days is not None and not 0 < self.shift_after_days < self.replay_days:
            raise ValueError(
                f"shift_after_days: {self.shift_after_days} must fall inside the replay (0 < days < {self.replay_days})"
            )
        if self.loop not in ("full", "scheduled", "frozen"):
            raise ValueError(f"loop: {self.loop!r} is not full, scheduled or frozen")
        if self.neural_every < 1 or self.decision_every < 1:
            raise ValueError(
                f"neural_every ({self.neural_every}) and decision_every ({self.decision_every}) must be >= 1"
            )

    @property
    def store_exchange(self) -> str:
        """The candle store's exchange name for this run's series."""
        return {"synthetic": "synthetic", "files": "files"}.get(self.source, self.exchange)

    @property
    def replay_start(self) -> datetime:
        return self.start + timedelta(days=self.history_days)

    @property
    def shift_at(self) -> datetime | None:
        if self.source != "synthetic" or self.shift_after_days is None:
            return None
        return self.replay_start + timedelta(days=self.shift_after_days)

    @property
    def report_file(self) -> Path:
        return self.report_path or REPO_ROOT / "var" / "reports" / f"run-{self.seed}.html"

    def policy_patch(self) -> dict[str, Any]:
        """What the run sets in the policy (stored as one version, author `simulation`)."""
        neural = {"max_steps": self.neural_steps, "val_check_steps": max(5, self.neural_steps // 3), "batch_size": 64}
        base = {
            "data": {
                "exchange": self.store_exchange,
                "symbols": list(self.symbols),
                "timeframe": self.timeframe,
                "lookback_days": min(self.training_days, self.history_days),
            },
            "training": {
                "seed": self.seed,
                "cv_folds": 2,
                "xgboost": {"n_estimators": self.trees, "max_depth": 4, "early_stopping_rounds": 10},
                "lightgbm": {"n_estimators": self.trees, "num_leaves": 15, "early_stopping_rounds": 10},
                "nhits": neural | {"input_size": 48},
                "patchtst": neural | {"input_size": 48, "patch_len": 12, "stride": 6},
            },
            "clm_config": {
                "enabled": True,
                "schedule_interval_days": self.schedule_interval_days,
                "retraining_cooldown_hours": self.retraining_cooldown_hours,
                "auto_promote_threshold": {
                    "min_samples": self.min_shadow_samples,
                    "max_samples": self.max_shadow_samples,
                },
                # Off, explicitly: 12 days of 15m candles and two walk-forward folds are too few for
                # the baseline gate's 95 % interval to separate any model from buy-and-hold, so with
                # it on nothing would go live and the story (first models ACTIVE, a promotion after
                # the shift) could not run. Every registration records "BASELINE GATE OFF".
                "baseline_gate": {"enabled": self.baseline_gate},
                "drift_window": {
                    "short_window": "wait",
                    "min_window_days": self.new_market_days,
                    "min_window_candles": 1,
                },
                "drift_detection": {
                    "check_interval_hours": self.drift_check_interval_hours,
                    "lookback_days": self.drift_lookback_days,
                    "min_rows": self.drift_min_rows,
                },
            },
            "rl": {},
        }
        return _merged(base, self._loop_patch())

    def _loop_patch(self) -> dict[str, Any]:
        patch: dict[str, Any] = {}
        if self.model_types is not None:
            patch["training"] = {"model_types": list(self.model_types)}
        if self.retired_versions_kept is not None:
            patch["clm_config"] = {"retired_versions_kept": self.retired_versions_kept}
        if self.shadow_patience_days is not None:
            patch["clm_config"] = patch.get("clm_config", {}) | {"shadow_patience_days": self.shadow_patience_days}
        if self.loop == "frozen":
            patch["clm_config"] = patch.get("clm_config", {}) | {"enabled": False}
        elif self.loop == "scheduled":
            patch["clm_config"] = patch.get("clm_config", {}) | {"drift_detection": {"enabled": False}}
        return patch

    def beat_jobs(self) -> set[str] | None:
        """The beat's jobs the run drives beyond the drift check (None: `JobRunner`'s usual set)."""
        return (
            None
            if self.loop == "full"
            else {"full-retraining", "shadow-evaluation", "rl-maintenance", "regime-detection"}
        )


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def files_from_paths(paths: list[str], timeframe: str = "1h") -> dict[str, str]:
    """Symbol -> path from file names like `binance_BTCUSDT_1h.csv` (BTC/USDT) or `ETH-USDT.parquet`.

    A directory contributes its candle files whose name carries `_<timeframe>`.
    """
    out: dict[str, str] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            listed = [p for p in sorted(path.iterdir()) if _is_candle_file(p) and f"_{timeframe}" in p.name]
            out |= files_from_paths([str(p) for p in listed], timeframe)
            continue
        if not path.exists():
            raise FileNotFoundError(f"--files: {path} does not exist")
        out.setdefault(symbol_of(path), str(path))
    return out


def _is_candle_file(path: Path) -> bool:
    return path.suffix.lower() in (".csv", ".parquet") or path.name.endswith(".csv.gz")


def symbol_of(path: Path) -> str:
    stem = path.name.split(".")[0]
    parts = stem.split("_")
    name = parts[1] if len(parts) >= 2 else parts[0]
    name = name.replace("-", "/").upper()
    for quote in ("USDT", "USDC", "BUSD", "BTC", "USD"):
        if "/" not in name and name.endswith(quote) and len(name) > len(quote):
            return f"{name[: -len(quote)]}/{quote}"
    return name
