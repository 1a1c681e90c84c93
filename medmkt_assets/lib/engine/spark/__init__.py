"""The Spark engine: lib.engine.warehouse.Session on Apache Spark, tables in the lakehouse.

Statements arrive in DuckDB's dialect, exactly as on the embedded engine; each is parsed once
(`dialect`) and carried out by its kind:

- queries (`queries`) run as Spark SQL, transpiled by sqlglot, over the live Parquet version of
  every table they name;
- writes (`writes`): `CREATE TABLE .. AS` writes a new version and publishes it (at COMMIT inside
  a transaction, so a failed step leaves the previous tables readable). Parquet tables cannot be
  updated in place, so `INSERT` writes the new rows beside hard links to the old files, and
  `DELETE`, `UPDATE` and `ALTER TABLE .. ADD COLUMN` rewrite the table as a query (what Delta
  Lake would do file by file);
- reading source files (read_csv, read_json, read_parquet of an export) is DuckDB's job on both
  engines (`beside`): a statement that reads files, or a DuckDB temp table made from them, runs
  in an embedded DuckDB beside Spark (it reads lakehouse tables through their Parquet files), and
  what it writes to the lakehouse lands there as Parquet. Heavy work from staging on never
  touches it.

`tables` knows where every table lives and which versions a transaction has staged; `lakehouse`
stores the versions and, after every publish, refreshes the DuckDB views in MEDMKT_WAREHOUSE.
`session.SparkWarehouseSession` puts the parts together behind the Session interface.

May import: lib.engine only. PySpark is imported inside functions, so this package loads without it.
"""
