"""The engine: how lib/ talks to the warehouse, whichever engine runs it.

`warehouse.Session` is the one interface (run a statement, query to pandas or Arrow, write a frame,
transactions); DuckDB embedded is the default, `spark/` the same interface on Apache Spark.
`sql` has the helpers every statement builder uses (quoting, literals, an engine-neutral hash).

May import: nothing else in lib/ (the bottom layer).
"""
