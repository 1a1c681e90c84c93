"""Insight stage: the name catalogues and the read-only snapshot the marketers' app reads."""
