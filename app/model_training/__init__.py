"""Model training: one forecaster interface, one table of model types, honest evaluation.

Adding a model type is one module and one line in `MODEL_TYPES`.
"""

from __future__ import annotations

from app.model_training.base import ConfidenceCalibrator, Forecaster, ForecasterInputError, ForecastSpec
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


# The service needs the table above, so it is imported after it.
from app.model_training.service import TrainedModel, load_forecaster, train_model  # noqa: E402

__all__ = [
    "MODEL_TYPES",
    "ConfidenceCalibrator",
    "ForecastSpec",
    "Forecaster",
    "ForecasterInputError",
    "TrainedModel",
    "forecaster_class",
    "load_forecaster",
    "train_model",
]
