"""medmkt: privacy-first healthcare & pharma marketing analytics on Dagster + DuckDB."""
