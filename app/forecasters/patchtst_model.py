"""PatchTST (neuralforecast) on each symbol's return series; this version takes no exogenous inputs."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from app.forecasters.neural import NeuralForecaster, NeuralParams


class PatchTSTParams(NeuralParams):
    input_size: int = Field(64, ge=2)  # candles of context: a whole number of patches reads best
    patch_len: int = Field(16, ge=1)
    stride: int = Field(8, ge=1)
    # Windows per step and the transformer's size, reduced from neuralforecast's defaults (1024; 128,
    # 16, 3, 256) for CPU workers: a 14x shorter fit with the same held-out figures on 5m candles
    # (README, "Neural models at seed scale").
    windows_batch_size: int = Field(256, ge=1)
    hidden_size: int = Field(64, ge=1)  # per patch, a multiple of n_heads
    n_heads: int = Field(4, ge=1)
    encoder_layers: int = Field(3, ge=1)
    linear_hidden_size: int = Field(128, ge=1)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> PatchTSTParams:
        if self.hidden_size % self.n_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of n_heads ({self.n_heads})")
        return self


class PatchTSTForecaster(NeuralForecaster):
    MODEL_TYPE = "patchtst"
    NF_MODEL = "PatchTST"
    SUPPORTS_EXOGENOUS = False
    Params = PatchTSTParams
    params: PatchTSTParams
    TINY_PARAMS = {
        "input_size": 16,
        "hidden_size": 16,
        "n_heads": 4,
        "max_steps": 3,
        "batch_size": 4,
        "val_check_steps": 1,
        "patch_len": 4,
        "stride": 4,
    }

    def model_kwargs(self) -> dict[str, Any]:
        params = self.params
        return {
            "patch_len": params.patch_len,
            "stride": params.stride,
            "hidden_size": params.hidden_size,
            "n_heads": params.n_heads,
            "encoder_layers": params.encoder_layers,
            "linear_hidden_size": params.linear_hidden_size,
        }
