"""Campaign stage: effects of past campaigns, propensity and risk scores, audiences for planned ones."""
