"""Profiles: the patient 360 and market-demand trends, built in SQL."""
