"""The Spark engine: lib.engine.warehouse.Session on Apache Spark, tables in the lakehouse.

Statements arrive in DuckDB's dialect, exactly as on the embedded engine; each is parsed once
(`dialect`) and carried out by its kind:

- queries (`queries`) run as Spark SQL, transpiled by sqlglot, over the live Parquet version of
  every table they name;
- writes (`writes`): `CREATE TABLE .. AS` writes a new version and publishes it (at COMMIT inside
  a transaction, so a failed step leaves the previous tables readable). Parquet tables cannot be
  updated in place: `INSERT` is Spark's own INSERT INTO (into a copy of the live version inside a
  transaction), and `DELETE`, `UPDATE` and `ALTER TABLE .. ADD COLUMN` rewrite the table as a query
  (what Delta Lake would do file by file);
- reading source files (read_csv, read_json, read_parquet of an export) is DuckDB's job on both
  engines (`beside`): a statement that reads files, or a DuckDB temp table made from them, runs
  in an embedded DuckDB beside Spark (it reads lakehouse tables through their Parquet files), and
  Spark writes what it makes into the lakehouse. Heavy work from staging on never touches it.

`tables` knows where every table lives and which versions a transaction has staged; `lakehouse`
keeps the tables in Spark's catalog (one database per schema, Parquet under MEDMKT_LAKEHOUSE,
which may be any Hadoop filesystem URI), switches versions with one catalog operation and, after
every publish, refreshes the DuckDB views in MEDMKT_WAREHOUSE.
`session.SparkWarehouseSession` puts the parts together behind the Session interface.

May import: lib.engine only. PySpark is imported inside functions, so this package loads without it.
"""
