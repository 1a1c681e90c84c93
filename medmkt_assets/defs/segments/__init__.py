"""Segmentation stage: patient segments and their summary."""
