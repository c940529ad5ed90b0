"""PatchTST (neuralforecast) on each symbol's return series; this version takes no exogenous inputs."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.forecasters.neural import NeuralForecaster, NeuralParams


class PatchTSTParams(NeuralParams):
    input_size: int = Field(64, ge=2)  # candles of context: a whole number of patches reads best
    patch_len: int = Field(16, ge=1)
    stride: int = Field(8, ge=1)


class PatchTSTForecaster(NeuralForecaster):
    MODEL_TYPE = "patchtst"
    NF_MODEL = "PatchTST"
    SUPPORTS_EXOGENOUS = False
    Params = PatchTSTParams
    params: PatchTSTParams
    TINY_PARAMS = {"input_size": 16, "max_steps": 3, "batch_size": 4, "val_check_steps": 1, "patch_len": 4, "stride": 4}

    def model_kwargs(self) -> dict[str, Any]:
        return {"patch_len": self.params.patch_len, "stride": self.params.stride}
