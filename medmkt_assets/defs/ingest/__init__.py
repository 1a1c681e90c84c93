"""Ingestion: source files → raw.<table>, every row kept as text with its lineage."""
