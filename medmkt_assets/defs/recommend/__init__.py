"""Recommendation stage: the next best products for every patient."""
