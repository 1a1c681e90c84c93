"""Dagster wiring, one sub-package per pipeline stage. Algorithms live in medmkt_assets.lib."""
