"""N-HiTS (neuralforecast) on each symbol's return series, with historical exogenous features."""

from __future__ import annotations

from app.forecasters.neural import NeuralForecaster, NeuralParams


class NHITSParams(NeuralParams):
    use_exogenous: bool = True


class NHITSForecaster(NeuralForecaster):
    MODEL_TYPE = "nhits"
    NF_MODEL = "NHITS"
    SUPPORTS_EXOGENOUS = True
    Params = NHITSParams
    params: NHITSParams
    TINY_PARAMS = {"input_size": 16, "max_steps": 3, "batch_size": 4, "val_check_steps": 1}

    def uses_exogenous(self) -> bool:
        return self.params.use_exogenous
