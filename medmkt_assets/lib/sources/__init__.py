"""The way in: source tables of the data contract, read from files and exports, then staged.

`schema`: the canonical source tables and their allowed values; `files`: loading canonical CSV and
Parquet into raw tables (clear errors naming file, column and row); `adapters/`: Synthea, FHIR bulk,
OMOP CDM and mapped CRM/ERP exports as SQL onto the canonical tables; `incoming`: the drop zone the
sensor watches; `parse`, `staging`, `staging_specs`: typing, pseudonymizing and quarantining rows.

May import: lib.engine, lib.privacy.
"""
