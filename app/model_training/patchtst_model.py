"""PatchTST (neuralforecast) on each symbol's return series; this version takes no exogenous inputs."""

from __future__ import annotations

from typing import Any

from app.model_training.neural import NeuralForecaster


class PatchTSTForecaster(NeuralForecaster):
    MODEL_TYPE = "patchtst"
    NF_MODEL = "PatchTST"
    SUPPORTS_EXOGENOUS = False

    def model_kwargs(self) -> dict[str, Any]:
        params = self.spec.params
        return {"patch_len": params.get("patch_len", 16), "stride": params.get("stride", 8)}
