"""The forecasters: one interface, and the table of model types (`MODEL_TYPES`).

Adding a model type is one module (its forecaster, its `Params` and its capability flags)
and one line in `MODEL_TYPES`: the policy's training section, the queues and the contract
tests are built from the table. Importing this package stays light (numpy, pandas,
pydantic; torch and neuralforecast only inside the methods that need them) because
`app.core.policy` imports the table; training and loading stored models are
`app.model_training`.
"""

from __future__ import annotations

from app.forecasters.base import ConfidenceCalibrator, Forecaster, ForecasterInputError, ForecastSpec, ModelParams
from app.forecasters.lightgbm_model import LightGBMForecaster
from app.forecasters.naive_model import NaiveForecaster
from app.forecasters.nhits_model import NHITSForecaster
from app.forecasters.patchtst_model import PatchTSTForecaster
from app.forecasters.xgboost_model import XGBoostForecaster

MODEL_TYPES: dict[str, type[Forecaster]] = {
    "xgboost": XGBoostForecaster,
    "lightgbm": LightGBMForecaster,
    "nhits": NHITSForecaster,
    "patchtst": PatchTSTForecaster,
    "naive": NaiveForecaster,
}


def forecaster_class(model_type: str) -> type[Forecaster]:
    """The class of a model type, or a clear error listing the known ones."""
    try:
        return MODEL_TYPES[model_type]
    except KeyError:
        raise ValueError(f"unknown model type {model_type!r}; known: {sorted(MODEL_TYPES)}") from None


__all__ = [
    "MODEL_TYPES",
    "ConfidenceCalibrator",
    "ForecastSpec",
    "Forecaster",
    "ForecasterInputError",
    "ModelParams",
    "forecaster_class",
]
