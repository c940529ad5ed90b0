"""Model supervisor (specification `model_supervisor.py`): the health of the models in production.

`health` is the maths (pure), `sql` the prediction logs and the PostgreSQL aggregation,
`service` the `ModelSupervisor` that checks every live model and publishes what it finds.
"""

from app.model_supervisor.health import ModelHealth, calibration_error, classify, health_metrics
from app.model_supervisor.service import ModelSupervisor
from app.model_supervisor.sql import health_metrics_postgres, prediction_frame

__all__ = [
    "ModelHealth",
    "ModelSupervisor",
    "calibration_error",
    "classify",
    "health_metrics",
    "health_metrics_postgres",
    "prediction_frame",
]
