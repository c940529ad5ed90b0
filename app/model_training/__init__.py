"""Model training: one forecaster interface, one table of model types, honest evaluation.

Adding a model type is one module (its forecaster, its `Params` and its capability flags)
and one line in `MODEL_TYPES`: the policy's training section, the queues and the contract
tests are built from the table. Importing this package stays light (numpy, pandas,
pydantic; torch and neuralforecast only inside the methods that need them) because
app.policy imports the table; training and loading stored models are in `service.py` and
`storage.py`.
"""

from __future__ import annotations

from app.model_training.base import ConfidenceCalibrator, Forecaster, ForecasterInputError, ForecastSpec, ModelParams
from app.model_training.lightgbm_model import LightGBMForecaster
from app.model_training.naive_model import NaiveForecaster
from app.model_training.nhits_model import NHITSForecaster
from app.model_training.patchtst_model import PatchTSTForecaster
from app.model_training.xgboost_model import XGBoostForecaster

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
