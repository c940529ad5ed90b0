"""Model supervisor (specification `model_supervisor.py`): the health of the models in production."""
