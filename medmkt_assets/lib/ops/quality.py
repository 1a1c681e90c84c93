"""Data-quality gates: metrics computed in DuckDB, judged by Great Expectations, published as Data Docs.

Scale comes from where the work happens: each check is one SQL aggregate over the
warehouse table (failing rows, duplicate keys, orphans, a drift distance), so ten
million order lines never travel to Python. Great Expectations then validates the
one-row frame of those metrics against each check's threshold, keeps the results and
renders the static Data Docs site that reviewers browse, self-contained (lib/ops/data_docs.py: it
works offline). Metric values are counts and
distances only, never a patient identifier.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlparse
from urllib.request import url2pathname

import pandas as pd

from medmkt_assets.lib.engine.sql import quote_ident, sql_list
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.ops.data_docs import make_self_contained
from medmkt_assets.lib.sources.as_of import AS_OF_SQL
from medmkt_assets.lib.sources.schema import (
    CAMPAIGN_CHANNELS,
    CAMPAIGN_PURPOSES,
    CONSENT_STATUSES,
    CONTACT_ARMS,
    EVENT_SOURCES,
    EVENT_TYPES,
    FUTURE_TOLERANCE,
    GENDERS,
    ORDER_CHANNELS,
    PRODUCT_KINDS,
    SOURCE_TABLES,
)

DATA_DOCS_SITE = "local_site"   # the GX file context's default Data Docs site
DRIFT_MAX = 0.2           # total variation distance between this and the previous mix
ROW_CHANGE_MAX = 1.0      # |log2(rows now / rows before)|: at most halved or doubled


@dataclass(frozen=True)
class Check:
    """One gate: `sql` returns a single number that must lie within [min_allowed, max_allowed]."""

    name: str
    description: str
    sql: str
    max_allowed: float | None = 0.0
    min_allowed: float | None = None
    severity: str = "ERROR"   # ERROR gates block downstream models; WARN only reports
    # (table, column regex, failing test with {c}): `{any_column}` in `sql` becomes the OR of
    # the test over the table's matching columns (a row fails when any of its columns does)
    per_column: tuple[str, str, str] | None = None

    @property
    def blocking(self) -> bool:
        return self.severity == "ERROR"

    @property
    def allowed(self) -> str:
        low = f"≥ {self.min_allowed:g}" if self.min_allowed is not None else ""
        high = f"≤ {self.max_allowed:g}" if self.max_allowed is not None else ""
        return " and ".join(x for x in (low, high) if x)



def _count(table: str, condition: str) -> str:
    return f"SELECT count(*) FROM {table} WHERE {condition}"


def _duplicates(table: str, keys: str) -> str:
    return f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {table} GROUP BY {keys} HAVING n > 1)"


def _orphans(table: str, column: str, parent: str, parent_column: str) -> str:
    return (f"SELECT count(*) FROM {table} t WHERE t.{column} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {parent} p WHERE p.{parent_column} = t.{column})")


def _keys(table: str, keys: str, label: str) -> list[Check]:
    nulls = " OR ".join(f"{k.strip()} IS NULL" for k in keys.split(","))
    return [Check(f"{label}_not_null", f"{keys} present on every row", _count(table, nulls)),
            Check(f"{label}_unique", f"{keys} unique", _duplicates(table, keys))]


def _patient_ref(table: str) -> Check:
    return Check("patient_exists", "every patient_key is a staged patient",
                 _orphans(table, "patient_key", "staging.patients", "patient_key"))


def _in_set(table: str, column: str, values, allow_null: bool = True) -> Check:
    null = f" AND {column} IS NOT NULL" if allow_null else ""
    return Check(f"{column}_accepted", f"{column} in {{{', '.join(values)}}}",
                 _count(table, f"{column} NOT IN ({sql_list(values)}){null}" if allow_null
                        else f"{column} IS NULL OR {column} NOT IN ({sql_list(values)})"))


def _not_future(table: str, column: str) -> Check:
    return Check(f"{column}_not_in_future", f"{column} at most a day after the export's as-of time",
                 _count(table, f"CAST({column} AS TIMESTAMP) > {AS_OF_SQL} + {FUTURE_TOLERANCE}"))


def _row_change(table: str) -> Check:
    return Check("row_count_change", "rows at most halved or doubled since the last run (|log2 ratio| ≤ 1)",
                 f"""SELECT CASE WHEN max(share) IS NULL THEN 0 ELSE
                            abs(log2(greatest((SELECT count(*) FROM {table}), 1) / greatest(max(share), 1))) END
                     FROM ops.quality_baselines WHERE table_name = '{table}' AND metric = 'row_count'
                       AND {_previous(table)}""",
                 max_allowed=ROW_CHANGE_MAX, severity="WARN")


def _volume(table: str, required: bool) -> list[Check]:
    """Row counts within bounds: a required table has rows; at most half of the raw rows quarantined."""
    name = table.split(".")[1]
    checks = [Check("quarantined_share", "at most half of the source rows quarantined",
                    f"SELECT (SELECT count(*) FROM quarantine.{name}) / greatest((SELECT count(*) FROM raw.{name}), 1)",
                    max_allowed=0.5, severity="WARN")]
    if required:
        checks.append(Check("rows_present", "the table has rows", f"SELECT count(*) FROM {table}",
                            min_allowed=1, max_allowed=None, severity="WARN"))
    return checks


def _previous(table: str) -> str:
    """Baseline rows of the table's previous materialization: the latest recorded for another one
    than the materialization being judged (`SET VARIABLE medmkt_materialization`), so running a
    check again on the same data judges it against the same baseline."""
    return (f"materialization = (SELECT arg_max(materialization, recorded_at) FROM ops.quality_baselines "
            f"WHERE table_name = '{table}' AND materialization IS DISTINCT FROM "
            "getvariable('medmkt_materialization'))")


def _drift(table: str, metric: str, bucket_sql: str, description: str) -> Check:
    """Total variation distance between the bucket mix now and at the previous run (0 on the first)."""
    return Check(f"{metric}_drift", description,
                 f"""WITH now AS ({bucket_sql}),
                     cur AS (SELECT bucket, n / sum(n) OVER () AS share FROM now),
                     before AS (SELECT bucket, share FROM ops.quality_baselines
                                WHERE table_name = '{table}' AND metric = '{metric}' AND {_previous(table)})
                     SELECT CASE WHEN (SELECT count(*) FROM before) = 0 THEN 0 ELSE
                            0.5 * sum(abs(coalesce(cur.share, 0) - coalesce(before.share, 0))) END
                     FROM cur FULL OUTER JOIN before USING (bucket)""",
                 max_allowed=DRIFT_MAX, severity="WARN")


CATEGORY_MIX = ("SELECT p.category AS bucket, count(*) AS n FROM staging.orders o "
                "JOIN staging.products p USING (product_id) GROUP BY 1")
AGE_MIX = (f"SELECT CAST(floor((year({AS_OF_SQL}) - birth_year) / 10) * 10 AS VARCHAR) AS bucket, count(*) AS n "
           "FROM staging.patients GROUP BY 1")
BASELINES = {"staging.orders": {"category_mix": CATEGORY_MIX}, "staging.patients": {"age_mix": AGE_MIX}}


def staged_checks(table: str) -> list[Check]:
    """The suite guarding one staged table."""
    t = f"staging.{table}"
    suites = {
        "patients": [*_keys(t, "patient_key", "patient_key"), _in_set(t, "gender", GENDERS, allow_null=False),
                     Check("birth_year_plausible", "birth year between 1900 and the as-of year",
                           _count(t, f"birth_year < 1900 OR birth_year > year({AS_OF_SQL})")),
                     _not_future(t, "registered_at"),
                     _drift(t, "age_mix", AGE_MIX, "age-band mix close to the previous run")],
        "products": [*_keys(t, "product_id", "product_id"),
                     Check("unit_price_not_negative", "list price ≥ 0", _count(t, "unit_price < 0")),
                     _in_set(t, "kind", PRODUCT_KINDS),
                     Check("category_present", "category on every product", _count(t, "category IS NULL"))],
        "orders": [*_keys(t, "order_id, line_no", "order_line"),
                   Check("quantity_positive", "quantity > 0", _count(t, "quantity IS NULL OR quantity <= 0")),
                   Check("unit_price_not_negative", "price paid ≥ 0", _count(t, "unit_price < 0")),
                   _not_future(t, "ordered_at"), _in_set(t, "channel", (*ORDER_CHANNELS, "other")),
                   _patient_ref(t),
                   Check("product_exists", "every product_id is a staged product",
                         _orphans(t, "product_id", "staging.products", "product_id")),
                   _drift(t, "category_mix", CATEGORY_MIX, "order category mix close to the previous run")],
        "diagnoses": [_patient_ref(t), Check("condition_code_present", "condition_code on every row",
                                             _count(t, "condition_code IS NULL")),
                      _not_future(t, "diagnosed_at")],
        "campaigns": [*_keys(t, "campaign_id", "campaign_id"), _in_set(t, "purpose", CAMPAIGN_PURPOSES, False),
                      _in_set(t, "channel", CAMPAIGN_CHANNELS),
                      Check("dates_ordered", "end_date on or after start_date", _count(t, "end_date < start_date")),
                      Check("cost_not_negative", "cost_per_contact ≥ 0", _count(t, "cost_per_contact < 0"))],
        "campaign_contacts": [*_keys(t, "campaign_id, patient_key", "contact"),
                              _in_set(t, "arm", CONTACT_ARMS, allow_null=False), _patient_ref(t),
                              Check("campaign_exists", "every campaign_id is a staged campaign",
                                    _orphans(t, "campaign_id", "staging.campaigns", "campaign_id")),
                              Check("revenue_not_negative", "revenue ≥ 0", _count(t, "revenue < 0")),
                              _not_future(t, "contacted_at"), _not_future(t, "converted_at"),
                              Check("control_not_contacted", "control-arm rows carry no contact time",
                                    _count(t, "arm = 'control' AND contacted_at IS NOT NULL"), severity="WARN")],
        "consents": [_patient_ref(t), _in_set(t, "status", CONSENT_STATUSES, allow_null=False),
                     _not_future(t, "recorded_at"),
                     replace(_in_set(t, "channel", (*CAMPAIGN_CHANNELS, "all")), severity="WARN")],
        "surveys": [_patient_ref(t),
                    Check("satisfaction_in_range", "satisfaction 1-5", _count(t, "satisfaction NOT BETWEEN 1 AND 5")),
                    Check("nps_in_range", "nps 0-10", _count(t, "nps NOT BETWEEN 0 AND 10")),
                    _not_future(t, "responded_at")],
        "events": [_in_set(t, "event_type", EVENT_TYPES, allow_null=False), _in_set(t, "source", EVENT_SOURCES),
                   _not_future(t, "occurred_at"),
                   Check("product_exists", "product_id of product events is a staged product (web pages may "
                         "name others)", _orphans(t, "product_id", "staging.products", "product_id"),
                         severity="WARN")],
    }
    return [*suites[table], *_volume(t, SOURCE_TABLES[table].required), _row_change(t)]


def feature_checks(table: str = "features.patient_features") -> list[Check]:
    """The suite guarding the model-input feature table."""
    return [
        *_keys(table, "patient_key", "patient_key"),
        Check("one_row_per_patient", "as many rows as staged patients",
              f"SELECT abs((SELECT count(*) FROM {table}) - (SELECT count(*) FROM staging.patients))"),
        Check("finite_values", "no NaN or infinite feature value",
              f"SELECT count(*) FROM {table} WHERE {{any_column}}",
              per_column=(table, "^(?!(patient_key|satisfaction)$)", "NOT ({c} BETWEEN -1e300 AND 1e300)")),
        Check("shares_between_0_and_1", "category and channel shares within [0, 1]",
              f"SELECT count(*) FROM {table} WHERE {{any_column}}",
              per_column=(table, "^(cat|ch)__", "NOT ({c} BETWEEN 0 AND 1)")),
        Check("counts_not_negative", "frequency, spend and recency ≥ 0",
              _count(table, "frequency < 0 OR monetary < 0 OR recency_days < 0")),
        _row_change(table),
    ]


# What an identifier left in de-identified text looks like (an e-mail address, a Chinese mobile number,
# a resident ID): counted by the gate below, so a redaction miss fails loudly. No backslashes (Spark).
LEFT_IDENTIFIER = ("regexp_matches({c}, '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+[.][A-Za-z.]{{2,}}') OR "
                   "regexp_matches({c}, '1[3-9][0-9][ -]?[0-9]{{4}}[ -]?[0-9]{{4}}') OR "
                   "regexp_matches({c}, '[0-9]{{17}}[0-9Xx]')")


def voice_checks() -> dict[str, list[Check]]:
    """The suites guarding the patient-voice tables: no identifier in the text analytics reads, scores
    and shares within their scales, every driver effect inside its interval."""
    comments, queries = "features.survey_comments", "features.search_queries"
    topics, drivers = "marts.voice_topics", "marts.satisfaction_drivers"
    return {
        comments: [*_keys(comments, "survey_id", "survey_id"),
                   Check("no_identifier_left", "no e-mail address, mobile number or resident ID in a comment",
                         _count(comments, LEFT_IDENTIFIER.format(c="comment"))),
                   Check("scores_in_scale", "satisfaction 1-5 and NPS 0-10",
                         _count(comments, "satisfaction NOT BETWEEN 1 AND 5 OR nps NOT BETWEEN 0 AND 10"))],
        queries: [Check("no_identifier_left", "no e-mail address, mobile number or resident ID in a search query",
                        _count(queries, LEFT_IDENTIFIER.format(c="query")))],
        topics: [*_keys(topics, "topic_id", "topic_id"),
                 Check("shares_between_0_and_1", "topic shares and sentiment shares within [0, 1]",
                       _count(topics, "share NOT BETWEEN 0 AND 1 OR positive_share NOT BETWEEN 0 AND 1 "
                                      "OR negative_share NOT BETWEEN 0 AND 1")),
                 Check("labelled", "every topic has a label in both languages and top terms",
                       _count(topics, "label IS NULL OR label_zh IS NULL OR array_length(top_terms) = 0"))],
        drivers: [Check("effect_inside_interval", "ci_low ≤ effect ≤ ci_high on every row",
                        _count(drivers, "NOT (ci_low <= effect AND effect <= ci_high)")),
                  Check("p_value_valid", "p-values within [0, 1]", _count(drivers, "p_value NOT BETWEEN 0 AND 1"))],
    }


def _expanded(con: Session, check: Check) -> str:
    """The check's SQL with `{any_column}` spelled out over the table's columns (DuckDB's COLUMNS()
    in a WHERE clause would AND the tests, so a row failed only when every column did)."""
    if check.per_column is None:
        return check.sql
    table, pattern, failing = check.per_column
    tests = [failing.format(c=quote_ident(c)) for c in con.describe(table) if re.search(pattern, c)]
    return check.sql.replace("{any_column}", "(" + (" OR ".join(tests) or "false") + ")")


def measure(con: Session, checks: list[Check], materialization: str = "") -> dict[str, float]:
    """Each check's metric, computed in DuckDB; drift and row-count change against the baseline
    of the materialization before `materialization`."""
    con.execute("SET VARIABLE medmkt_materialization = ?", [materialization])
    values = {}
    for check in checks:
        value = con.execute(_expanded(con, check)).fetchone()[0]
        values[check.name] = float(value) if value is not None else 0.0
    return values


BASELINES_DDL = ("CREATE TABLE IF NOT EXISTS ops.quality_baselines (table_name VARCHAR, metric VARCHAR, "
                 "bucket VARCHAR, share DOUBLE, recorded_at TIMESTAMP, materialization VARCHAR)")


def record_baselines(con: Session, table: str, materialization: str = "") -> None:
    """Remember this materialization's row count and mixes for the next one to measure drift
    against; only it and the one before it are kept (recording it again replaces it)."""
    ensure_baselines(con)
    con.execute("DELETE FROM ops.quality_baselines WHERE table_name = $t AND materialization IS DISTINCT FROM $m "
                "AND materialization IS DISTINCT FROM (SELECT arg_max(materialization, recorded_at) FROM "
                "ops.quality_baselines WHERE table_name = $t AND materialization IS DISTINCT FROM $m)",
                {"t": table, "m": materialization})
    con.execute("DELETE FROM ops.quality_baselines WHERE table_name = ? AND materialization IS NOT DISTINCT FROM ?",
                [table, materialization])
    con.execute(f"INSERT INTO ops.quality_baselines SELECT '{table}', 'row_count', NULL, count(*), now(), $m "
                f"FROM {table}", {"m": materialization})
    for metric, bucket_sql in BASELINES.get(table, {}).items():
        con.execute(f"INSERT INTO ops.quality_baselines SELECT '{table}', '{metric}', bucket, n / sum(n) OVER (), "
                    f"now(), $m FROM ({bucket_sql})", {"m": materialization})


def ensure_baselines(con: Session) -> None:
    """The baselines table (warehouses from before materialization ids get the column)."""
    con.execute(BASELINES_DDL)
    con.execute("ALTER TABLE ops.quality_baselines ADD COLUMN IF NOT EXISTS materialization VARCHAR")


@dataclass
class Outcome:
    check: Check
    observed: float
    passed: bool
    report: str  # the Data Docs page of the validation that judged it (URL path from the site root)


def validate(suite_name: str, checks: list[Check], observed: dict[str, float], quality_dir: Path,
             run_name: str | None = None) -> list[Outcome]:
    """Judge the metrics with a Great Expectations suite, store the result and rebuild the Data Docs.

    `run_name` (the Dagster run id) names the validation run, so its result page, which each
    outcome points to, sits under that name in the site."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="file", project_root_dir=str(quality_dir))
    # GX draws a tqdm bar per metric calculation on stderr, which Dagster keeps in the run logs.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = _get_or(lambda: context.data_sources.get("medmkt_metrics"),
                     lambda: context.data_sources.add_pandas("medmkt_metrics"))
    asset = _get_or(lambda: source.get_asset(suite_name), lambda: source.add_dataframe_asset(name=suite_name))
    batch = _get_or(lambda: asset.get_batch_definition("latest_run"),
                    lambda: asset.add_batch_definition_whole_dataframe("latest_run"))
    for remove in (context.validation_definitions.delete, context.suites.delete):
        try:
            remove(suite_name)
        except Exception:  # noqa: BLE001 - absent on the first run
            pass
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=[
        gxe.ExpectColumnValuesToBeBetween(column=c.name, min_value=c.min_allowed, max_value=c.max_allowed,
                                          meta={"severity": c.severity, "guards": c.description})
        for c in checks]))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=suite_name, data=batch, suite=suite))
    frame = pd.DataFrame([{c.name: observed[c.name] for c in checks}])
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc))
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY", run_id=run_id)
    report = _build_docs_for(context, suite_name, run_id, quality_dir)
    verdict = {r.expectation_config.kwargs["column"]: bool(r.success) for r in result.results}
    return [Outcome(c, observed[c.name], verdict.get(c.name, False), report) for c in checks]


def _build_docs_for(context, suite_name: str, run_id, quality_dir: Path) -> str:
    """Render this validation's result page and the index (re-rendering every stored result each
    time grew with the history: a second per check after a few runs); the page's URL path from
    the site root."""
    (key,) = [k for k in context.validation_results_store.list_keys()
              if k.expectation_suite_identifier.name == suite_name and k.run_id == run_id]
    started = time.time()
    context.build_data_docs(site_names=[DATA_DOCS_SITE], resource_identifiers=[key])
    root = data_docs_root(quality_dir)  # the pages just written, pointed at the site's own assets (offline)
    make_self_contained(root, [p for p in root.rglob("*.html") if p.stat().st_mtime >= started - 1])
    (site,) = context.get_docs_sites_urls(resource_identifier=key, site_name=DATA_DOCS_SITE)
    page = Path(url2pathname(urlparse(site["site_url"]).path)).resolve()
    return quote(page.relative_to(data_docs_root(quality_dir).resolve()).as_posix())


def data_docs_root(quality_dir: Path) -> Path:
    """The folder to serve as the Data Docs site root: index.html, and validations/... pages
    that link to each other and to static/ by relative paths."""
    return quality_dir / "gx" / "uncommitted" / "data_docs" / DATA_DOCS_SITE


def data_docs_index(quality_dir: Path) -> Path:
    return data_docs_root(quality_dir) / "index.html"


def _get_or(get, create):
    try:
        return get()
    except Exception:  # noqa: BLE001 - GX raises different errors for "not found" across stores
        return create()
