"""What the insight app reads, and the pure steps from the snapshot's tables to what a page shows.

The snapshot (lib/ops/insight.py) is attached read-only to an in-memory session for each
query, so the app never holds the file open while the pipeline renames a new one over it;
cached tables are keyed by the file's identity and refresh with it. Nothing here computes a
number the marts hid: totals add up published cells only, and a hidden cell renders as the
hidden marker, never as a value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import streamlit as st
from babel.numbers import format_decimal

from medmkt_assets.app import i18n
from medmkt_assets.lib.engine.sql import sql_list, sql_literal
from medmkt_assets.lib.engine.warehouse import scratch
from medmkt_assets.lib.models.campaigns import uplift_test
from medmkt_assets.lib.models.recommender_selection import OPTIMISTIC_BASELINE
from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX
from medmkt_assets.settings import Settings

PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")
# Segment means compared with the average segment on the segments page.
PROFILE_MEASURES = {
    "female_share": "col.female_share", "avg_recency_days": "col.recency", "avg_frequency": "col.frequency",
    "avg_monetary": "col.monetary", "avg_order_value": "col.order_value", "avg_digital_events": "col.digital",
    "avg_satisfaction": "col.satisfaction", "chronic_condition_share": "col.chronic",
    "marketing_consent_share": "col.consent",
}
# Which part of the serving policy picked a row (lib.models.recommenders.Hybrid); anything else is the champion.
REASONS = {"content": "reason.content", "popularity_by_segment": "reason.segment", "popularity": "reason.popular"}
MEASURES = ("revenue", "orders", "patients")


@dataclass(frozen=True)
class Snapshot:
    """The snapshot file the pipeline published (MEDMKT_INSIGHT_SNAPSHOT), opened read-only."""
    path: Path

    @classmethod
    def from_settings(cls) -> "Snapshot":
        return cls(Settings.from_env().insight_snapshot)

    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def version(self) -> tuple[int, int, int]:
        """The file's identity: a newly published snapshot is a new file (renamed over the old one)."""
        stat = self.path.stat()
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """`sql` over the snapshot's tables (as `snap.<table>`), on a fresh read-only attachment."""
        con = scratch()
        try:
            con.execute(f"ATTACH {sql_literal(str(self.path))} AS snap (READ_ONLY)")
            return con.query_df(sql, params)
        finally:
            con.close()

    def table(self, name: str) -> pd.DataFrame:
        """A whole (small) table, cached until the snapshot is replaced."""
        return self.cached(f"SELECT * FROM snap.{name}")

    def cached(self, sql: str) -> pd.DataFrame:
        """A query's result, cached until the snapshot is replaced."""
        return _cached_query(str(self.path), self.version, sql)

    def optional_table(self, name: str, columns) -> pd.DataFrame:
        """A table an older snapshot may lack (the voice marts): empty, with `columns`, when it does."""
        found = self.cached(f"SELECT count(*) AS n FROM duckdb_tables() WHERE database_name = 'snap' "
                            f"AND table_name = {sql_literal(name)}")
        return self.table(name) if found.n.iloc[0] else pd.DataFrame(columns=list(columns))

    def patient(self, patient_key: str) -> tuple[str | None, pd.DataFrame]:
        """One patient's segment label and recommendation list (the big tables are read per patient)."""
        segment = self.query("SELECT segment_label FROM snap.marts_patient_segments WHERE patient_key = ?",
                             [patient_key])
        recs = self.query("SELECT rank, product_id, score, model FROM snap.marts_recommendations "
                          "WHERE patient_key = ? ORDER BY rank", [patient_key])
        return (segment.segment_label.iloc[0] if len(segment) else None), recs

    def serving_model(self) -> str | None:
        """The champion: the model behind the lists' rows other than the fallbacks' (REASONS)."""
        top = self.cached(f"SELECT model FROM snap.marts_recommendations WHERE model NOT IN ({sql_list(REASONS)}) "
                          "GROUP BY model ORDER BY count(*) DESC, model LIMIT 1")
        return top.model.iloc[0] if len(top) else None


@st.cache_data(show_spinner=False, max_entries=64)
def _cached_query(path: str, version: tuple[int, int, int], sql: str) -> pd.DataFrame:
    return Snapshot(Path(path)).query(sql)


@dataclass(frozen=True)
class Names:
    """Readable names for the codes in rules and lists: products, conditions."""
    products: dict[str, str]
    conditions: dict[str, str]
    products_zh: dict[str, str] | None = None  # Chinese names where the data gives them (`name_zh`)

    @classmethod
    def of(cls, snapshot: Snapshot) -> "Names":
        products = snapshot.table("marts_product_catalog")
        conditions = snapshot.table("marts_condition_catalog")
        chinese = (products[products.name_zh.notna()] if "name_zh" in products  # older snapshots lack it
                   else products.iloc[:0].assign(name_zh=None))
        return cls(dict(zip(products.product_id, products.name)),
                   dict(zip(conditions.condition_code, conditions.condition_name)),
                   dict(zip(chinese.product_id, chinese.name_zh)))

    def product(self, product_id: str, lang: str) -> str:
        """A product's name in `lang` (its Chinese name where the data has one), else its id."""
        if lang == "zh" and self.products_zh and product_id in self.products_zh:
            return self.products_zh[product_id]
        return self.products.get(product_id, product_id)

    def item(self, item: str, lang: str) -> str:
        """A rule item: a product's name, or 'Category: …' / 'Condition: E11 …' for patient-scope items."""
        kind, _, value = item.partition(":")
        if kind == "category" and value:
            return i18n.t("item.category", lang, name=i18n.term(value, lang))
        if kind == "condition" and value:
            name = self.conditions.get(value)
            return i18n.t("item.condition", lang, name=f"{value} {name}" if name else value)
        return self.product(item, lang)

    def items(self, items, lang: str) -> str:
        return " + ".join(self.item(i, lang) for i in items)


def published_total(values: pd.Series, suppressed: pd.Series) -> float:
    """The sum of the published cells only (a hidden cell is never estimated or back-filled)."""
    return float(values[~suppressed.fillna(True).astype(bool)].fillna(0).sum())


def relative_profile(summary: pd.DataFrame) -> pd.DataFrame:
    """segment_id, measure, index: each published segment's mean against the patient-weighted
    average of the published segments (100 = average); hidden segments are left out."""
    shown = summary[~summary.suppressed.fillna(True).astype(bool)]
    weights = shown.patients.astype(float)
    rows = []
    for measure in PROFILE_MEASURES:
        values = shown[measure].astype(float)
        known = values.notna()
        average = (values[known] * weights[known]).sum() / weights[known].sum() if known.any() else float("nan")
        index = 100 * values / average if average else values * float("nan")
        rows.append(pd.DataFrame({"segment_id": shown.segment_id, "measure": measure, "index": index}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["segment_id", "measure", "index"])


def filter_rules(rules: pd.DataFrame, scope: str, min_lift: float, min_confidence: float,
                 product: str | None) -> pd.DataFrame:
    """Rules of one scope above the thresholds (holding `product` on either side), highest lift first."""
    keep = (rules.scope == scope) & (rules.lift >= min_lift) & (rules.confidence >= min_confidence)
    if product:
        def holds(items) -> bool:
            return product in list(items)
        keep &= rules.antecedents.map(holds) | rules.consequents.map(holds)
    return rules[keep].sort_values(["lift", "confidence", "rule_id"], ascending=[False, False, True])


def rule_products(rules: pd.DataFrame, scope: str) -> list[str]:
    """Products (not categories or conditions) that appear in a scope's rules, for the product filter."""
    part = rules[rules.scope == scope]
    items = {i for side in (part.antecedents, part.consequents) for items in side for i in items}
    return sorted(i for i in items if not i.startswith(("category:", "condition:")))


def recommendation_reason(model: str) -> str:
    """The text key saying why a product is on a patient's list."""
    return REASONS.get(model, "reason.similar")


def model_name(model: str, lang: str) -> str:
    """A recommender candidate's label (lib.models.recommender_selection.label) in words."""
    if model.startswith("ease_l"):
        return i18n.t("model.ease", lang, value=model.removeprefix("ease_l"))
    if model.startswith("itemknn"):
        parts = model.split("_")[1:]
        detail = i18n.join([i18n.term(p, lang) for p in parts if p != "decay"]
                           + ([i18n.t("model.decay", lang)] if "decay" in parts else []), lang)
        return i18n.t("model.itemknn", lang, detail=detail)
    key = f"model.{model}"
    return i18n.t(key, lang) if key in i18n.TEXT[lang] else model


def metric_name(column: str, lang: str) -> str:
    """precision_at_10 → 'Precision@10'; the other evaluation columns by their key."""
    found = re.match(r"^(precision|recall|ndcg|map)_at_(\d+)$", column)
    if found:
        return i18n.t(f"metric.{found[1]}", lang, k=found[2])
    return i18n.t(f"metric.{column}", lang)


def evaluation_table(evaluation: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The recommender comparison as display text: model in words, how it was tested, each metric."""
    metrics = [c for c in evaluation.columns if c not in ("model", "split")]
    return pd.DataFrame({
        i18n.t("col.model", lang): evaluation.model.map(lambda m: model_name(m, lang)).to_list(),
        i18n.t("col.split", lang): evaluation.split.map(lambda s: i18n.t(f"split.{s}", lang)).to_list(),
        **{metric_name(c, lang): [i18n.number(v, lang, 3) if pd.notna(v) else "–" for v in evaluation[c]]
           for c in metrics},
    })


def demand_selection(trends: pd.DataFrame, regions: list[str], categories: list[str],
                     months: tuple) -> pd.DataFrame:
    """The demand cells (published or hidden) in the chosen regions, categories and months."""
    month = pd.to_datetime(trends.month)
    return trends[trends.region.isin(regions) & trends.category.isin(categories)
                  & month.between(pd.Timestamp(months[0]), pd.Timestamp(months[1]))]


def demand_totals(cells: pd.DataFrame, by: list[str], measure: str) -> pd.DataFrame:
    """Sums of the published cells per group; groups whose cells are all hidden are left out."""
    published = cells[~cells.suppressed.fillna(True).astype(bool)]
    return published.groupby(by, as_index=False)[measure].sum()


# How a value of each kind renders (lang first); a missing value renders as "–".
FORMATS: dict[str, Callable] = {
    "text": lambda v, lang: str(v),
    "term": lambda v, lang: i18n.term(v, lang),
    "terms": lambda v, lang: i18n.term_list(v, lang),
    "reason": lambda v, lang: i18n.reason(v, lang),
    "segment": lambda v, lang: i18n.segment_label(v, lang),
    "count": lambda v, lang: i18n.number(v, lang),   # of people: 1-10 render hidden (see `cell`)
    "int": lambda v, lang: i18n.number(v, lang),
    "decimal1": lambda v, lang: i18n.number(v, lang, 1),
    "decimal2": lambda v, lang: i18n.number(v, lang, 2),
    "decimal3": lambda v, lang: i18n.number(v, lang, 3),
    "decimal4": lambda v, lang: i18n.number(v, lang, 4),
    "percent": lambda v, lang: i18n.percent(v, lang),
    "percent2": lambda v, lang: i18n.percent(v, lang, 2),
    "points": lambda v, lang: i18n.points(v, lang),
    "money": lambda v, lang: i18n.money(v, lang),
    "date": lambda v, lang: i18n.date(v, lang),
    "month": lambda v, lang: i18n.month(v, lang),
    "timestamp": lambda v, lang: i18n.timestamp(v, lang),
    "yes_no": lambda v, lang: i18n.yes_no(v, lang),
}


def cell(value, kind: str, hidden: bool, lang: str) -> str:
    """One table cell. A value the marts hid (missing in a suppressed row) and a count of 1-10
    people render as the hidden marker, never as a number."""
    missing = value is None or (not isinstance(value, (list, tuple)) and pd.isna(value))
    if missing:
        return i18n.t("hidden", lang) if hidden else "–"
    if kind == "count" and 1 <= float(value) <= SMALL_CELL_MAX:
        return i18n.t("hidden", lang)
    return FORMATS[kind](value, lang)


def format_table(frame: pd.DataFrame, columns: dict[str, tuple[str, str]], lang: str) -> pd.DataFrame:
    """The frame as text for display: `columns` maps a column to (header text key, format kind)."""
    hidden = (frame.suppressed.fillna(False).astype(bool) if "suppressed" in frame
              else pd.Series(False, index=frame.index))
    return pd.DataFrame({
        i18n.t(header, lang): [cell(v, kind, h, lang) for v, h in zip(frame[column], hidden)]
        for column, (header, kind) in columns.items()
    })


def hidden_reason(frame: pd.DataFrame, partitioned: bool) -> pd.Series:
    """Why each row of an effects table is hidden (a text key; None where published).

    The marts blank a row's group sizes when the contacted or the control group has 1-10 people,
    and only its rates and money when a group has 1-10 conversions (lib.models.campaigns.
    suppress_effects). In a table whose rows add up to a total (`partitioned`: the segments of one
    campaign, the channels), a row may also be hidden with another hidden one so that one cannot
    be worked out by subtraction: the mart does not say which, so both reasons are given."""
    hidden = frame.suppressed.fillna(False).astype(bool)
    sizes_hidden = frame.treated.isna() | frame.control.isna()
    kind = pd.Series("hidden.group", index=frame.index).where(sizes_hidden, "hidden.conversions")
    return kind.add(".or_partner" if partitioned else "").where(hidden, None)


def fill_from_campaigns(channels: pd.DataFrame, effects: pd.DataFrame) -> pd.DataFrame:
    """By-channel rows the mart hid although every campaign of the channel is published in the
    campaign table: the channel is then the sum of those campaigns (what a reader could add up
    from the table above), uplift and interval recomputed from the published counts and rates.
    Adds `from_campaigns` (True where filled); other rows unchanged."""
    out = channels.assign(from_campaigns=False).reset_index(drop=True)
    for i, row in out[out.suppressed.fillna(False).astype(bool)].iterrows():
        mine = effects[effects.channel.fillna("unknown") == row.group_value]
        if mine.empty or mine.suppressed.fillna(True).astype(bool).any():
            continue
        treated, control = mine.treated.astype(float).sum(), mine.control.astype(float).sum()
        converted_t = (mine.treated_conversion_rate * mine.treated.astype(float)).round().sum()
        converted_c = (mine.control_conversion_rate * mine.control.astype(float)).round().sum()
        stats = uplift_test([converted_t], [treated], [converted_c], [control]).iloc[0]
        cost, revenue = mine.cost.astype(float).sum(), mine.incremental_revenue.astype(float).sum()
        out.loc[i, ["treated", "control", "cost", "incremental_revenue"]] = [treated, control, cost, revenue]
        for column in ("uplift", "uplift_ci_low", "uplift_ci_high", "p_value"):
            out.loc[i, column] = stats[column]
        out.loc[i, "roi"] = (revenue - cost) / cost if cost > 0 else float("nan")
        out.loc[i, ["suppressed", "from_campaigns"]] = [False, True]
    return out


def recommender_roles(evaluation: pd.DataFrame, champion: str | None) -> pd.Series:
    """Each evaluated model's part (a text key): serves the lists, reported for comparison only
    (the optimistic baseline, never eligible: lib.models.recommender_selection), or a candidate."""
    return evaluation.model.map(lambda m: "role.served" if m == champion else
                                "role.optimistic" if m == OPTIMISTIC_BASELINE else "role.candidate")


def segment_patients(snapshot: Snapshot, segment_id: int, limit: int) -> list[str]:
    """Up to `limit` pseudonyms of one segment's patients (the first by pseudonym: a random
    pick, as pseudonyms are keyed hashes), for the offer lookup; nothing else about them."""
    found = snapshot.query("SELECT patient_key FROM snap.marts_patient_segments WHERE segment_id = ? "
                           "ORDER BY patient_key LIMIT ?", [int(segment_id), int(limit)])
    return found.patient_key.tolist()


# Patient voice (views/voice.py): what a topic, a driver, an NPS cell and a quality figure read as.
SENTIMENTS = ("positive", "neutral", "negative")
DRIVER_FACTORS = ("segment", "channel", "category", "facility", "campaign")
OTHER_LEVEL = "other"  # the rare levels of a factor taken together
NO_LEVEL = "none"  # a driver's missing level: no visit found, no campaign contact before the answer (lib.voice.drivers)
# voice_quality metrics the page names, and how each value reads; others are shown by their own name.
QUALITY_FORMATS = {"comments_analysed": "int", "comments_excluded_sensitive": "int", "identifiers_redacted": "int",
                   "topics": "int", "comments_without_topic": "int", "sentiment_accuracy": "percent",
                   "sentiment_kappa": "decimal2", "sentiment_cohen_kappa": "decimal2", "sentiment_spearman": "decimal2",
                   "sentiment_macro_f1": "decimal2", "sentiment_polar_agreement": "percent"}
KAPPA = ("sentiment_kappa", "sentiment_cohen_kappa")  # the agreement beyond chance, as the mart names it


def topic_label(label, label_zh, lang: str) -> str:
    """A topic's label in `lang` (the English one where the mart has no Chinese label)."""
    if lang == "zh" and isinstance(label_zh, str) and label_zh.strip():
        return label_zh
    return str(label)


def topic_terms(terms, lang: str) -> str:
    """A topic's top terms as the comments write them (data, not translated)."""
    if terms is None or (not hasattr(terms, "__len__") and pd.isna(terms)):
        return "–"
    return i18n.join([str(t) for t in terms], lang)


def topic_examples(topics: pd.DataFrame, examples: pd.DataFrame, topic_id: int) -> pd.DataFrame | None:
    """The example comments of one topic, ranked, or None where its examples may not be shown: only
    a topic whose `examples_shown` is true and that more than SMALL_CELL_MAX people wrote about
    (the marts and the snapshot already hold to this; the page holds to it again)."""
    topic = topics[topics.topic_id == topic_id]
    if topic.empty:
        return None
    shown, authors = topic.examples_shown.iloc[0], topic.authors.iloc[0]
    if not (pd.notna(shown) and bool(shown)) or pd.isna(authors) or float(authors) <= SMALL_CELL_MAX:
        return None
    return examples[examples.topic_id == topic_id].sort_values("rank")


def signed(value, lang: str, digits: int = 2) -> str:
    """A difference with its sign: '+0.30', '-1.20'."""
    pattern = "+#,##0." + "0" * digits + ";-#,##0." + "0" * digits if digits else "+#,##0;-#,##0"
    return format_decimal(value, format=pattern, locale=i18n.LOCALES[lang])


def interval(low, high, lang: str, digits: int = 2) -> str:
    """A confidence interval in words: '0.21 to 0.39', '0.21 至 0.39'."""
    return i18n.t("voice.interval", lang, low=i18n.number(low, lang, digits), high=i18n.number(high, lang, digits))


def estimate(value, low, high, lang: str, digits: int = 2) -> str:
    """'+0.30 (0.21 to 0.39)': an estimate with its interval."""
    return f"{signed(value, lang, digits)} ({interval(low, high, lang, digits)})"


def excludes_zero(low, high) -> bool:
    return bool(pd.notna(low) and pd.notna(high) and (low > 0 or high < 0))


def level_name(factor: str, level, lang: str, campaigns: dict[str, str] | None = None) -> str:
    """A driver's or an NPS cell's level in `lang`: segment labels part by part, channels and
    categories by the data's words, campaigns by name; facilities as the data names them."""
    if level is None or (not isinstance(level, str) and pd.isna(level)):
        return "–"
    if level == NO_LEVEL:
        return i18n.t("voice.none.campaign" if factor == "campaign" else "voice.none", lang)
    if level == OTHER_LEVEL:
        return i18n.term(level, lang)
    if factor == "segment":
        return i18n.segment_label(level, lang)
    if factor in ("channel", "category", "theme", "region"):
        return i18n.term(level, lang)
    if factor == "campaign" and campaigns and level in campaigns:
        return campaigns[level]
    return str(level)


def driver_rows(drivers: pd.DataFrame, outcome: str, lang: str, campaigns: dict[str, str] | None = None
                ) -> pd.DataFrame:
    """One outcome's drivers for display, by factor (in DRIVER_FACTORS order) and largest effect
    first: level and reference in words, 'effect (interval)' text, whether the interval excludes 0.
    A row with no effect, or of 1-10 respondents, is hidden (its effect never shown)."""
    rows = drivers[drivers.outcome == outcome].copy()
    if rows.empty:
        return rows.assign(level_text=[], reference_text=[], estimate_text=[], clear=[], suppressed=[])
    order = {f: i for i, f in enumerate(DRIVER_FACTORS)}
    respondents = rows.respondents.astype("Float64")
    rows["suppressed"] = (rows.effect.isna() | respondents.isna() | (respondents <= SMALL_CELL_MAX)).astype(bool)
    rows["factor_order"] = rows.factor.map(order).fillna(len(order))
    rows = rows.sort_values(["factor_order", "factor", "effect"], ascending=[True, True, False])
    rows["level_text"] = [level_name(f, v, lang, campaigns) for f, v in zip(rows.factor, rows.level)]
    rows["reference_text"] = [level_name(f, v, lang, campaigns) for f, v in zip(rows.factor, rows.reference_level)]
    rows["estimate_text"] = [i18n.t("hidden", lang) if h else estimate(e, lo, hi, lang)
                             for e, lo, hi, h in zip(rows.effect, rows.ci_low, rows.ci_high, rows.suppressed)]
    rows["clear"] = [None if h else excludes_zero(lo, hi)
                     for lo, hi, h in zip(rows.ci_low, rows.ci_high, rows.suppressed)]
    return rows.drop(columns="factor_order").reset_index(drop=True)


def nps_rows(summary: pd.DataFrame, dimension: str, lang: str) -> pd.DataFrame:
    """NPS cells of one dimension for display, highest first; a cell without an NPS (suppressed) or
    without its number of respondents (1-10) shows those as hidden."""
    rows = summary[summary.dimension == dimension].copy()
    rows["suppressed"] = (rows.nps.isna() | rows.respondents.isna()).astype(bool)
    rows["level_text"] = ([i18n.t("voice.all_respondents", lang)] * len(rows) if dimension == "overall"
                          else [level_name(dimension, v, lang) for v in rows.level])
    rows["nps_text"] = [i18n.t("hidden", lang) if pd.isna(v) else signed(v, lang, 1) for v in rows.nps]
    rows["ci_text"] = [i18n.t("hidden", lang) if pd.isna(v) or pd.isna(lo) else interval(lo, hi, lang, 1)
                       for v, lo, hi in zip(rows.nps, rows.nps_ci_low, rows.nps_ci_high)]
    return rows.sort_values("nps", ascending=False, na_position="last").reset_index(drop=True)


def quality_value(quality: pd.DataFrame, *metrics: str) -> float | None:
    """The first of `metrics` the quality mart holds a value for."""
    for metric in metrics:
        found = quality.value[quality.metric == metric]
        if len(found) and pd.notna(found.iloc[0]):
            return float(found.iloc[0])
    return None


def quality_rows(quality: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Every quality figure the mart holds: the known ones named and formatted, others as written."""
    names = [i18n.t(f"quality.{m}", lang) if m in QUALITY_FORMATS else str(m) for m in quality.metric]
    values = [cell(v, QUALITY_FORMATS.get(m, "decimal3"), False, lang) for m, v in zip(quality.metric, quality.value)]
    return pd.DataFrame({i18n.t("col.metric", lang): names, i18n.t("col.value", lang): values})


def search_selection(themes: pd.DataFrame, regions: list[str]) -> pd.DataFrame:
    """Search cells of the chosen regions; `suppressed` where the mart hid the searches or the
    number of people searching (so a blank renders hidden)."""
    cells = themes[themes.region.isin(regions)]
    return cells.assign(suppressed=(cells.searches.isna() | cells.searchers.isna()).astype(bool))
