"""The name app.retraining.steps imports `train_model` from; the service lives in service.py."""

from app.model_training.service import TrainedModel, load_forecaster, train_model

__all__ = ["TrainedModel", "load_forecaster", "train_model"]
