"""Typed settings read from the environment (prefix-free, as operators expect).

Nothing here connects to anything; `bootstrap` turns settings into live objects.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class Mode(StrEnum):
    EMBEDDED = "embedded"  # SQLite, eager Celery, in-process events, local artifacts
    DISTRIBUTED = "distributed"  # PostgreSQL, Redis broker, Celery workers


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    mode: Mode = Field(default=Mode.EMBEDDED, alias="CLM_MODE")
    database_url: str = Field(default=f"sqlite:///{REPO_ROOT / 'var' / 'clm.sqlite'}", alias="DATABASE_URL")
    broker_url: str = Field(default="redis://127.0.0.1:6379/0", alias="CELERY_BROKER_URL")
    result_backend: str = Field(default="redis://127.0.0.1:6379/1", alias="CELERY_RESULT_BACKEND")
    artifact_root: str = Field(default=str(REPO_ROOT / "var" / "artifacts"), alias="ARTIFACT_ROOT")
    api_token: SecretStr | None = Field(default=None, alias="CLM_API_TOKEN")
    exchange_id: str = Field(default="binance", alias="CLM_EXCHANGE")
    train_threads: int = Field(default=max(1, os.cpu_count() or 1), alias="CLM_TRAIN_THREADS")
    device: str = Field(default="auto", alias="CLM_DEVICE")  # auto | cpu | cuda
    # A job's dataset is prepared in pieces of this many symbols (one task each) when it has more.
    dataset_piece_symbols: int = Field(default=10, ge=1, alias="CLM_DATASET_PIECE_SYMBOLS")
    alert_webhook_url: str | None = Field(default=None, alias="CLM_ALERT_WEBHOOK_URL")
    # The API loads the ACTIVE and SHADOW models in the background when it starts, and every
    # `model_watch_seconds` loads the ones that changed (a promotion, a new shadow) before a
    # request needs them (app.prediction.preload); 0 loads once at start only.
    model_preload: bool = Field(default=True, alias="CLM_MODEL_PRELOAD")
    model_watch_seconds: float = Field(default=10.0, ge=0, alias="CLM_MODEL_WATCH_SECONDS")
    log_level: str = Field(default="INFO", alias="CLM_LOG_LEVEL")
    # A replay's simulated clock shared with worker processes through a file (the distributed
    # main run); unset in production, where the wall clock rules.
    simulated_clock_file: str | None = Field(default=None, alias="CLM_SIMULATED_CLOCK_FILE")

    @property
    def embedded(self) -> bool:
        return self.mode == Mode.EMBEDDED


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
