"""Model tracking: MLflow runs, datasets, registered models and the figures logged with them.

`mlflow_runs`: backend folders, experiments, run links, model logging and the RunTracker protocol
the model code logs through; `plots`: matplotlib figures (calibration, gain, Qini, segments).

May import: lib.engine (models log through it).
"""
