"""Model training (specification `model_training.py`): train, evaluate honestly, store.

`service.train_model` trains a forecaster on a stored dataset (walk-forward CV, early
stopping, calibration) and evaluates it beside the baselines (`evaluation`, `splits`);
`storage` saves and loads its files in the library's own format, hash-checked. The
forecasters themselves and the table of model types are `app.forecasters`.
"""
