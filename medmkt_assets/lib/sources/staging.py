"""Typed staging with quarantine: every raw row ends up staged or quarantined, never lost.

A `StagingSpec` says, per source table, how raw text is parsed (`parsed`), which rows
are rejected and why (`rules`, first failing rule wins), which key must be unique
(later duplicates are quarantined, the first row in load order is kept) and what the
published staging table holds (`output`). The specs themselves are written, one per
table, in `staging_specs`; `stage_table` runs one as SQL in DuckDB.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from medmkt_assets.lib.engine.sql import quote_ident, sql_literal
from medmkt_assets.lib.engine.warehouse import Session


@dataclass(frozen=True)
class StagingSpec:
    table: str
    parsed: dict[str, str]            # _s_<name> -> expression over raw columns
    rules: tuple[tuple[str, str], ...]  # (condition that makes a row bad, reason)
    unique_key: tuple[str, ...]       # parsed names; later duplicates are quarantined
    output: tuple[str, ...]           # select list of the staging table over parsed names
    restricted_output: tuple[str, ...] = ()  # select list of restricted.<table>, if any
    restricted_where: str = "true"           # which staged rows restricted.<table> keeps
    # name -> (condition over raw rows, costlier expression used only when some row meets it)
    parsed_if_needed: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the unique key as (parsed name, staging column) pairs, when the staging table does not
    # hold the key under its own name (patients: patient_id is only kept in restricted)
    staged_key: tuple[tuple[str, str], ...] = ()
    # SQL over parsed names: the row's sensitive family (NULL: none) and how it matched. A good row
    # of a family goes to restricted.sensitive_<table> instead of staging (lib.privacy.sensitive).
    sensitive: str | None = None
    sensitive_match: str | None = None
    # parsed name -> the raw id column its pseudonym is computed from: computed once per distinct id
    pseudonyms: dict[str, str] = field(default_factory=dict)

    @property
    def withheld_table(self) -> str | None:
        return f"restricted.sensitive_{self.table}" if self.sensitive else None


@dataclass
class StagingResult:
    table: str
    raw_rows: int
    staged_rows: int
    quarantined_rows: int
    reasons: dict[str, int]
    batch_rows: int | None = None  # set when only one appended batch was staged
    withheld: dict[str, int] = field(default_factory=dict)  # sensitive family -> rows withheld

    @property
    def withheld_rows(self) -> int:
        return sum(self.withheld.values())


def stage_table(con: Session, spec: StagingSpec, raw_table: str) -> StagingResult:
    """(Re)write staging.<t>, quarantine.<t> (and restricted.<t>) from every row of raw_table."""
    raw_columns = _columns(con, raw_table)
    _parse(con, spec, raw_table, "TRUE", _needed_expressions(con, spec, raw_table, "TRUE"))
    _judge(con, spec, already_staged=False)
    _publish(con, spec, raw_table, raw_columns, append=False)
    return _result(con, spec, raw_table)


def stage_batch(con: Session, spec: StagingSpec, raw_table: str,
                batch_file: str) -> StagingResult | None:
    """Stage only the rows of one batch file just appended to raw_table, or return None.

    Every other raw row must already be staged or quarantined and the batch must be the
    last file loaded; then the batch's rows are judged by the same rules, a key already in
    staging makes a row a duplicate (the earlier row was first in load order) and the
    verdicts are appended. The result equals a full restage except for rows judged against
    the as-of time ("in the future"; a batch of later days moves it), which keep their earlier
    verdict until the next full run.
    None means the shortcut does not apply (first load, new columns, a batch needing line
    numbers across files, ...) and the caller restages the whole table.
    """
    targets = [f"staging.{spec.table}", f"quarantine.{spec.table}"]
    targets += [spec.withheld_table] if spec.withheld_table else []
    targets += [f"restricted.{spec.table}"] if spec.restricted_output else []
    if not all(con.table_exists(t) for t in targets):
        return None
    raw_columns = _columns(con, raw_table)
    if _columns(con, f"quarantine.{spec.table}") != raw_columns + ["_reason"]:
        return None
    batch = f"_source_file = {sql_literal(batch_file)}"
    raw_rows, batch_rows, first_batch_row, last_other_row = con.execute(
        f"SELECT count(*), count(*) FILTER ({batch}), min(rowid) FILTER ({batch}), "
        f"max(rowid) FILTER (NOT ({batch})) FROM {raw_table}").fetchall()[0]
    judged = targets[:3] if spec.withheld_table else targets[:2]  # staged, quarantined (and withheld) rows
    judged_before = sum(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in judged)
    if not batch_rows or judged_before != raw_rows - batch_rows or (last_other_row or -1) > first_batch_row:
        return None
    expressions = _needed_expressions(con, spec, raw_table, batch)
    if expressions != spec.parsed:  # e.g. line numbers counted over an order's rows in every file
        return None
    _parse(con, spec, raw_table, batch, expressions)
    _judge(con, spec, already_staged=True)
    _publish(con, spec, raw_table, raw_columns, append=True)
    result = _result(con, spec, raw_table)
    result.batch_rows = batch_rows
    return result


def _needed_expressions(con: Session, spec: StagingSpec, raw_table: str,
                        where: str) -> dict[str, str]:
    expressions = dict(spec.parsed)
    for name, (condition, costly) in spec.parsed_if_needed.items():
        if con.execute(f"SELECT bool_or({condition}) FROM {raw_table} WHERE {where}").fetchall()[0][0]:
            expressions[name] = costly
    return expressions


def _parse(con: Session, spec: StagingSpec, raw_table: str, where: str,
           expressions: dict[str, str]) -> None:
    """`_medmkt_parsed`: the raw rows of `where` with their load order (`_raw_order`) and parsed values.

    On DuckDB a view: the verdicts and each published table parse what they need from the raw rows
    again, which at 20 M order lines is cheaper than storing every raw and parsed column once
    (staging the orders of 1,000,000 patients: 79 s → 60 s). On Spark a temp table. A pseudonym is computed once per distinct
    raw id (a patient's 20 order lines share it) and joined in.
    """
    joins, parsed = [], dict(expressions)
    for number, (name, column) in enumerate(spec.pseudonyms.items()):
        lookup = f"_medmkt_pseudonyms_{number}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {lookup} AS SELECT {quote_ident(column)} AS _medmkt_id, "
                    f"{parsed.pop(name)} AS _medmkt_key FROM (SELECT DISTINCT {quote_ident(column)} "
                    f"FROM {raw_table} WHERE {where}) AS ids")
        # a subquery, not the table: a table's implicit rowid would clash with the raw rows' own
        joins.append(f"LEFT JOIN (SELECT _medmkt_id, _medmkt_key FROM {lookup}) AS _medmkt_p{number} "
                     f"ON _medmkt_p{number}._medmkt_id = r.{quote_ident(column)}")
        parsed[name] = f"_medmkt_p{number}._medmkt_key"
    columns = ",\n  ".join(f"{expr} AS _s_{name}" for name, expr in parsed.items())
    kind = "TABLE" if con.engine == "spark" else "VIEW"
    con.execute(f"CREATE OR REPLACE TEMP {kind} _medmkt_parsed AS SELECT r.*, r.rowid AS _raw_order, {columns} "
                f"FROM {raw_table} r {' '.join(joins)} WHERE {where}")


def _drop_parsed(con: Session, spec: StagingSpec) -> None:
    con.execute(f"DROP {'TABLE' if con.engine == 'spark' else 'VIEW'} _medmkt_parsed")
    for number in range(len(spec.pseudonyms)):
        con.execute(f"DROP TABLE _medmkt_pseudonyms_{number}")
    con.execute("DROP TABLE _medmkt_rejected")
    if spec.sensitive:
        con.execute("DROP TABLE _medmkt_sensitive")


def _judge(con: Session, spec: StagingSpec, already_staged: bool) -> None:
    """`_medmkt_rejected`: the load order and reason of each rejected row of _medmkt_parsed, the
    first failing rule, else a duplicate key (of an earlier row here, or, if already_staged, of a
    staged row); and, when the spec screens for sensitive rows, `_medmkt_sensitive`: the load
    order of each row of a sensitive family. Both come from one pass over the parsed rows and
    are few; the good rows are never copied.
    """
    judged = " ".join(f"WHEN {cond} THEN '{reason}'" for cond, reason in spec.rules)
    flagged = f"({spec.sensitive}) IS NOT NULL" if spec.sensitive else "false"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _medmkt_flagged AS
                    SELECT * FROM (SELECT _raw_order, CASE {judged} ELSE NULL END AS _reason,
                                          {flagged} AS _sensitive FROM _medmkt_parsed)
                    WHERE _reason IS NOT NULL OR _sensitive""")
    con.execute("CREATE OR REPLACE TEMP TABLE _medmkt_rejected AS "
                "SELECT _raw_order, _reason FROM _medmkt_flagged WHERE _reason IS NOT NULL")
    if spec.sensitive:
        con.execute("CREATE OR REPLACE TEMP TABLE _medmkt_sensitive AS "
                    "SELECT _raw_order FROM _medmkt_flagged WHERE _sensitive")
    con.execute("DROP TABLE _medmkt_flagged")
    if spec.unique_key:
        keys = ", ".join(spec.unique_key)
        duplicate = (f"'duplicate {', '.join(k.removeprefix('_s_') for k in spec.unique_key)}; "
                     "the first row in file order was kept'")
        unjudged = "_medmkt_parsed p ANTI JOIN _medmkt_rejected r USING (_raw_order)"
        if already_staged:
            pairs = spec.staged_key or tuple((k, k.removeprefix("_s_")) for k in spec.unique_key)
            in_staging = " AND ".join(f"s.{col} IS NOT DISTINCT FROM p.{name}" for name, col in pairs)
            # probe staging with the batch's (few) keys instead of hashing the whole staged table
            kept = ", ".join(c for _, c in pairs)
            staged = (f"(SELECT {kept} FROM staging.{spec.table} UNION ALL SELECT {kept} FROM {spec.withheld_table})"
                      if spec.withheld_table else f"staging.{spec.table}")
            con.execute(f"""INSERT INTO _medmkt_rejected
                            WITH earlier AS (SELECT DISTINCT {', '.join(f's.{c} AS {n}' for n, c in pairs)}
                                             FROM {staged} s SEMI JOIN (SELECT * FROM {unjudged}) p
                                             ON {in_staging})
                            SELECT p._raw_order, {duplicate} FROM {unjudged}
                            SEMI JOIN earlier e ON {' AND '.join(f'e.{n} IS NOT DISTINCT FROM p.{n}' for n, _ in pairs)}""")
        # Duplicates are rare: group the rows by a 64-bit hash of the key (a window or a group
        # by on the key itself would sort or hash millions of strings), then settle the few
        # clashing hashes on the key itself, keeping each key's first row in load order.
        same_key = " AND ".join(f"s.{k} IS NOT DISTINCT FROM f.{k}" for k in spec.unique_key)
        con.execute(f"""INSERT INTO _medmkt_rejected
                        WITH clash AS (SELECT hash({keys}) AS h FROM {unjudged} GROUP BY h HAVING count(*) > 1),
                        suspects AS (SELECT p._raw_order, {', '.join(f'p.{k}' for k in spec.unique_key)}
                                     FROM {unjudged} SEMI JOIN clash c ON hash({', '.join(f'p.{k}' for k in spec.unique_key)}) = c.h),
                        firsts AS (SELECT {keys}, min(_raw_order) AS first FROM suspects GROUP BY ALL HAVING count(*) > 1)
                        SELECT s._raw_order, {duplicate} FROM suspects s JOIN firsts f ON {same_key}
                        WHERE s._raw_order <> f.first""")


def _publish(con: Session, spec: StagingSpec, raw_table: str, raw_columns: list[str], append: bool) -> None:
    """Write the verdicts: rejected raw rows to quarantine, good rows to staging, sensitive rows to
    restricted (and the identifiers to restricted): replace or append."""
    into = (lambda t: f"INSERT INTO {t}") if append else (lambda t: f"CREATE OR REPLACE TABLE {t} AS")
    con.execute(f"{into(f'quarantine.{spec.table}')} {_quarantined(raw_table, raw_columns)}")
    # ordinary rows: neither rejected nor sensitive (those are all in restricted.sensitive_<table>)
    set_aside = ("(SELECT _raw_order FROM _medmkt_rejected UNION ALL SELECT _raw_order FROM _medmkt_sensitive)"
                 if spec.sensitive else "_medmkt_rejected")
    con.execute(f"{into(f'staging.{spec.table}')} {_staged(spec.output, set_aside)}")
    if spec.sensitive:
        withheld = (*spec.output, f"CAST({spec.sensitive} AS VARCHAR) AS sensitive_family",
                    f"CAST({spec.sensitive_match} AS VARCHAR) AS sensitive_match")
        # only the sensitive rows are parsed again (a filter on the load order reaches the raw scan)
        sensitive_rows = "(SELECT * FROM _medmkt_parsed WHERE _raw_order IN (SELECT _raw_order FROM _medmkt_sensitive))"
        con.execute(f"{into(spec.withheld_table)} {_staged(withheld, '_medmkt_rejected', sensitive_rows)}")
    if spec.restricted_output:
        con.execute(f"{into(f'restricted.{spec.table}')} "
                    f"{_staged(spec.restricted_output, set_aside, where=spec.restricted_where)}")
    _drop_parsed(con, spec)


def _quarantined(raw_table: str, raw_columns: list[str]) -> str:
    """The rejected rows as they came, read from the raw table (nothing of them needs parsing)."""
    quoted = ", ".join(f"r.{quote_ident(c)}" for c in raw_columns)
    return (f"SELECT {quoted}, j._reason FROM (SELECT *, rowid AS _raw_order FROM {raw_table}) r "
            "JOIN _medmkt_rejected j USING (_raw_order) ORDER BY _raw_order")


def _staged(select_list: tuple[str, ...], excluded: str, source: str = "_medmkt_parsed", where: str = "true") -> str:
    """The parsed rows of `source` but those of `excluded` (load orders), in load order."""
    # ORDER BY: a parallel CTAS under memory pressure may write a row group out of order
    return (f"SELECT {', '.join(select_list)} FROM {source} AS _medmkt_rows ANTI JOIN {excluded} AS _medmkt_out "
            f"USING (_raw_order) WHERE {where} ORDER BY _raw_order")


def _result(con: Session, spec: StagingSpec, raw_table: str) -> StagingResult:
    (raw_rows,) = con.execute(f"SELECT count(*) FROM {raw_table}").fetchall()[0]
    (staged,) = con.execute(f"SELECT count(*) FROM staging.{spec.table}").fetchall()[0]
    reasons = dict(con.execute(f"SELECT _reason, count(*) FROM quarantine.{spec.table} "
                               "GROUP BY 1 ORDER BY 2 DESC").fetchall())
    withheld = (dict(con.execute(f"SELECT sensitive_family, count(*) FROM {spec.withheld_table} "
                                 "GROUP BY 1 ORDER BY 2 DESC").fetchall()) if spec.withheld_table else {})
    return StagingResult(spec.table, raw_rows, staged, sum(reasons.values()), reasons, withheld=withheld)


def _columns(con: Session, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]


def ensure_schemas(con: Session) -> None:
    for schema in ("raw", "restricted", "quarantine", "staging", "features", "marts", "ops"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
