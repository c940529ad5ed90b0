"""N-HiTS (neuralforecast) on each symbol's return series, with historical exogenous features."""

from __future__ import annotations

from app.model_training.neural import NeuralForecaster


class NHITSForecaster(NeuralForecaster):
    MODEL_TYPE = "nhits"
    NF_MODEL = "NHITS"
    SUPPORTS_EXOGENOUS = True
