"""marts.association_rules at basket and patient scope (issue 6)."""
import time

import dagster as dg
import pandas as pd
import pyarrow as pa
from mlflow import log_metrics, log_params
from pydantic import Field

from medmkt_assets.defs.resources import MlflowTracker, Warehouse
from medmkt_assets.defs.warehouse import (
    REFRESH_WHEN_INPUTS_CHANGE,
    WAREHOUSE_POOL,
    row_count,
)
from medmkt_assets.lib.engine.sql import stable_hash_sql
from medmkt_assets.lib.models import on_spark
from medmkt_assets.lib.models.rules import (
    min_count_for,
    mine_rules,
    rules_from_itemsets,
)
from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX
from medmkt_assets.lib.tracking import mlflow_runs, plots

# Baskets are numbered in SQL so only small integers and item ids travel to Python.
BASKET_ITEMS_SQL = {
    "basket": """
        SELECT b.basket_id, o.product_id AS item_id
        FROM staging.orders o
        JOIN (SELECT order_id, row_number() OVER (ORDER BY order_id) AS basket_id
              FROM (SELECT DISTINCT order_id FROM staging.orders)) b USING (order_id)""",
    "patient": """
        WITH items AS (
            SELECT patient_key, product_id AS item_id FROM staging.orders
            UNION SELECT o.patient_key, 'category:' || p.category FROM staging.orders o
                  JOIN staging.products p USING (product_id)
            UNION SELECT patient_key, 'condition:' || condition_code FROM staging.diagnoses
        )
        SELECT b.basket_id, i.item_id FROM items i
        JOIN (SELECT patient_key, row_number() OVER (ORDER BY patient_key) AS basket_id
              FROM staging.patients {sample}) b USING (patient_key)""",
}
# A seeded simple random sample of patients, when there are more than the configured size: the
# first `size` by a stable hash, so both engines draw the same patients.
PATIENT_SAMPLE = ("WHERE patient_key IN (SELECT patient_key FROM staging.patients "
                  f"ORDER BY {stable_hash_sql('patient_key', repr('7'))}, patient_key LIMIT {{size}})")


# What a reader sees for each rule item, with its code kept: a product's name
# ("Metformin 500 mg tablets (P002)"), "category: diabetes care", "diagnosis: <name> (E11)".
ITEM_NAMES_SQL = """
WITH items AS (SELECT DISTINCT unnest(CAST($items AS VARCHAR[])) AS item_id),
conditions AS (
    SELECT 'condition:' || condition_code AS item_id, min(condition_name) AS name FROM staging.diagnoses
    WHERE 'condition:' || condition_code IN (SELECT item_id FROM items) GROUP BY 1
)
SELECT i.item_id, CASE
    WHEN i.item_id LIKE 'category:%' THEN 'category: ' || replace(substr(i.item_id, 10), '_', ' ')
    WHEN i.item_id LIKE 'condition:%' THEN 'diagnosis: ' || coalesce(c.name || ' (' || substr(i.item_id, 11) || ')',
                                                                  substr(i.item_id, 11))
    ELSE coalesce(p.name || ' (' || i.item_id || ')', i.item_id) END AS label
FROM items i LEFT JOIN staging.products p ON p.product_id = i.item_id LEFT JOIN conditions c USING (item_id)"""
TOP_RULES_PER_SCOPE = 10
ARROW_TEXT = {pa.string(): pd.ArrowDtype(pa.string()), pa.large_string(): pd.ArrowDtype(pa.large_string())}

# Rule item lists as VARCHAR[] (pandas hands over Python lists), ordered for readers.
RULES_TABLE_SQL = ("SELECT rule_id, CAST(antecedents AS VARCHAR[]) AS antecedents, "
                   "CAST(consequents AS VARCHAR[]) AS consequents, * EXCLUDE (rule_id, antecedents, consequents) "
                   "FROM frame ORDER BY scope, rule_id")


class RulesConfig(dg.Config):
    basket_min_support: float = Field(default=0.001, description="Basket scope: least share of orders holding the itemset.")
    basket_min_confidence: float = Field(default=0.2, description="Basket scope: least P(consequent | antecedent).")
    basket_max_len: int = Field(default=4, description="Basket scope: most items in a rule (both sides).")
    patient_min_support: float = Field(default=0.05, description="Patient scope: least share of patients with the itemset.")
    patient_min_confidence: float = Field(default=0.5, description="Patient scope: least P(consequent | antecedent).")
    patient_max_len: int = Field(default=3, description="Patient scope: most items in a rule (both sides).")
    patient_sample_size: int = Field(default=250_000, description=(
        "Patient scope: mine a seeded random sample of this many patients when there are more (0: everyone). "
        "At the 5 % minimum support a share is then known to within about ±0.1 percentage point, "
        "and counts and n_baskets describe the sample."))
    min_support_count: int = Field(default=SMALL_CELL_MAX + 1, description=(
        "Least number of baskets (patients, at patient scope) behind a rule, whatever the relative support: "
        "a rule about 1-10 patients describes a small cell, and on small data it is noise."))
    min_lift: float = Field(default=1.1, description="Keep rules at least this much above independence.")
    single_consequent: bool = Field(default=False, description="Only one-item consequents (arules' default).")
    prune_redundant: bool = Field(default=True, description=(
        "Drop rules no more confident than a more general rule (published tables stay readable; "
        "lib.models.rules.mine_rules keeps the raw, arules-comparable set by default)."))
    max_rules: int = Field(default=20_000, description="Most rules published per scope, highest lift first.")
    scopes: list[str] = Field(default=["basket", "patient"], description="Which scopes to mine.")


@dg.asset(
    key=["marts", "association_rules"], group_name="rules", kinds={"duckdb", "mlflow"}, pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=[dg.AssetKey(["staging", t]) for t in ("orders", "products", "diagnoses", "patients")],
)
def association_rules(context: dg.AssetExecutionContext, config: RulesConfig, warehouse: Warehouse,
                      tracker: MlflowTracker) -> dg.MaterializeResult:
    """FP-growth rules (arules semantics) over orders and over patients' whole histories, with lift and information measures."""
    found, timings, sampled = [], {}, {}
    for scope in config.scopes:
        if scope not in BASKET_ITEMS_SQL:
            raise dg.Failure(f"Unknown rule scope {scope!r}: use 'basket' and/or 'patient'.")
        started = time.perf_counter()
        rules, sampled[scope] = _mine_scope(context, config, warehouse, scope)
        timings[scope] = time.perf_counter() - started
        found.append(rules)
    rules = pd.concat(found, ignore_index=True)
    url = _log_rules(context, tracker, config, rules, sampled, timings)
    top = (rules.sort_values(["scope", "lift"], ascending=[True, False], kind="stable")
           .groupby("scope").head(TOP_RULES_PER_SCOPE))
    with warehouse.transaction() as con:
        con.write_frame(rules, "marts.association_rules", query=RULES_TABLE_SQL)
        n = row_count(con, "marts.association_rules")
        items = sorted({i for column in (top.antecedents, top.consequents) for row in column for i in row})
        names = dict(con.execute(ITEM_NAMES_SQL, {"items": items}).fetchall())
    top = top.assign(rule=_readable(top, names))[
        ["scope", "rule_id", "rule", "support", "confidence", "lift", "mutual_information"]].round(4)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        **{f"rules_{s}": int((rules.scope == s).sum()) for s in config.scopes},
        **{f"baskets_{s}": int(rules.loc[rules.scope == s, "n_baskets"].max()) for s in config.scopes
           if (rules.scope == s).any()},
        "patient_scope_sampled": sampled.get("patient", False),
        "top_rules_by_lift": dg.MetadataValue.md(top.to_markdown(index=False) if len(top) else "(no rules)"),
        "mlflow_run": dg.MetadataValue.url(url),
    })


def _readable(rules: pd.DataFrame, names: dict[str, str]) -> pd.Series:
    """'A + B → C' in item names (arules' {} for an empty antecedent); a | would end a markdown cell."""
    def side(items) -> str:
        return " + ".join(names.get(i, i).replace("|", "/") for i in items) or "{}"
    return rules.antecedents.map(side) + " → " + rules.consequents.map(side)


def _mine_scope(context: dg.AssetExecutionContext, config: RulesConfig, warehouse: Warehouse,
                scope: str) -> tuple[pd.DataFrame, bool]:
    """One scope's rules (at most max_rules, by lift) and whether its baskets were a patient sample."""
    sample = ""
    settings = dict(single_consequent=config.single_consequent, min_lift=config.min_lift,
                    prune_redundant=config.prune_redundant)
    confidence, max_len = getattr(config, f"{scope}_min_confidence"), getattr(config, f"{scope}_max_len")
    with warehouse.session() as con:
        if scope == "patient" and 0 < config.patient_sample_size < row_count(con, "staging.patients"):
            sample = PATIENT_SAMPLE.format(size=config.patient_sample_size)
        basket_sql = BASKET_ITEMS_SQL[scope].format(sample=sample)
        if con.engine == "spark":  # itemsets counted in the cluster: the baskets never reach the driver
            n_baskets = max(con.execute(f"SELECT count(DISTINCT basket_id) FROM ({basket_sql})").fetchall()[0][0], 1)
            min_support = _min_support(config, scope, n_baskets)
            itemsets, n = on_spark.frequent_itemsets(con.dataframe(basket_sql),
                                                         min_count_for(min_support, n_baskets), max_len)
            rules = rules_from_itemsets(itemsets, n, confidence, **settings)
        else:  # item ids stay Arrow strings: 20 M Python str objects would cost more than the mining
            baskets = con.query_arrow(basket_sql).to_pandas(types_mapper=ARROW_TEXT.get)
            n_baskets = max(baskets.basket_id.nunique(), 1)
            min_support = _min_support(config, scope, n_baskets)
            rules = mine_rules(baskets, min_support, confidence, max_len=max_len, **settings)
    if len(rules) > config.max_rules:
        context.log.warning("%s scope: %d rules; publishing the %d with the highest lift.", scope, len(rules),
                            config.max_rules)
        rules = rules.head(config.max_rules)  # mine_rules sorts by lift, confidence, support
    rules["rule_id"] = scope[0].upper() + rules.rule_id
    context.log.info("%s scope: %d rules from %d baskets%s (min support %.5f)", scope, len(rules), n_baskets,
                     " (a random sample of patients)" if sample else "", min_support)
    return rules.assign(scope=scope), bool(sample)


def _min_support(config: RulesConfig, scope: str, n_baskets: int) -> float:
    """The scope's relative support, raised so that no rule rests on fewer than min_support_count baskets."""
    return min(1.0, max(getattr(config, f"{scope}_min_support"), config.min_support_count / n_baskets))


def _log_rules(context: dg.AssetExecutionContext, tracker: MlflowTracker, config: RulesConfig, rules: pd.DataFrame,
               sampled: dict[str, bool], timings: dict[str, float]) -> str:
    """The rules run: settings, counts and timings per scope, the rules table and a scatter per scope."""
    with tracker.start_run(context, "medmkt-association-rules", "fp_growth") as run:
        log_params({**config.model_dump(exclude={"scopes"}), "scopes": ",".join(config.scopes)})
        log_params({f"sampled_{s}": v for s, v in sampled.items()})
        log_metrics({f"rules_{s}": float((rules.scope == s).sum()) for s in config.scopes}
                    | {f"seconds_{s}": t for s, t in timings.items()})
        mlflow_runs.log_frame(rules.assign(antecedents=rules.antecedents.map("|".join),
                                        consequents=rules.consequents.map("|".join)), "association_rules.csv")
        for scope in config.scopes:
            part = rules[rules.scope == scope]
            if len(part):
                mlflow_runs.log_figure(plots.rules_scatter(part), f"support_confidence_{scope}.png")
        return tracker.run_url(run)

