"""Pure library code: SQL builders and algorithms. Nothing here imports Dagster."""
