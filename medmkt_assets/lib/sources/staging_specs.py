"""What staging does to each source table, one keyword-argument spec per table.

A spec names the parsed values (`parsed`: name → SQL over the raw text columns), the
rules that quarantine a row (condition → reason, first failing rule wins), the key whose
later duplicates are quarantined, and what the staging (and restricted) table holds.
In rules and outputs `{name}` is a parsed value; `table_spec` adds the internal `_s_`
prefix and refuses a name that is not parsed. `{as_of}` is the run's as-of time (see
lib.sources.as_of), bound as a literal: "in the future" means after it, not after the
wall clock, so a date-shifted export is judged by its own dates. An output that is just a parsed name is
published under that name (`"gender"` → `_s_gender AS gender`); any other bare name is a
raw column (`_source_file`, `phone`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from medmkt_assets.lib.engine.sql import sql_list, sql_literal
from medmkt_assets.lib.privacy.pseudonym import hmac_sql
from medmkt_assets.lib.privacy.sensitive import SensitivePolicy
from medmkt_assets.lib.sources import parse as P
from medmkt_assets.lib.sources.schema import (
    CAMPAIGN_CHANNELS,
    CAMPAIGN_PURPOSES,
    CONSENT_STATUSES,
    CONTACT_ARMS,
    EVENT_SOURCES,
    EVENT_TYPES,
    FUTURE_TOLERANCE,
    SOURCE_TABLES,
)
from medmkt_assets.lib.sources.staging import StagingSpec

PREFIX = "_s_"
AS_OF = "as_of"  # the placeholder of the run's as-of time
PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Pseudonym:
    """A parsed value that is the HMAC pseudonym of a raw id column (the key is bound at run time)."""

    column: str


@dataclass(frozen=True)
class TableSpec:
    """A staging spec before the pseudonym key is known."""

    table: str
    parsed: dict[str, str | Pseudonym]
    rules: tuple[tuple[str, str], ...]
    output: tuple[str, ...]
    unique_key: tuple[str, ...] = ()
    restricted_output: tuple[str, ...] = ()
    restricted_where: str = "true"  # SQL over parsed names: which staged rows restricted.<table> keeps
    parsed_if_needed: dict[str, tuple[str, str]] = field(default_factory=dict)
    staged_key: dict[str, str] = field(default_factory=dict)  # parsed name → staging column
    # the sensitive family of a row (NULL: none) and how it matched, by the sensitive-data policy
    sensitive: str | None = None
    sensitive_match: str | None = None

    def bind(self, pseudonym_key: str, as_of: datetime) -> StagingSpec:
        """The StagingSpec that stage_table runs, with `_s_` names, pseudonyms keyed and the as-of time."""
        names = set(self.parsed) | set(self.parsed_if_needed)

        def sql(text: str) -> str:
            def name(match: re.Match) -> str:
                if match.group(1) == AS_OF:
                    return f"CAST({sql_literal(as_of.isoformat(sep=' '))} AS TIMESTAMP)"
                if match.group(1) not in names:
                    raise ValueError(f"staging spec {self.table}: {{{match.group(1)}}} is not a parsed value "
                                     f"(parsed: {', '.join(sorted(names))})")
                return PREFIX + match.group(1)
            return PLACEHOLDER.sub(name, text)

        def column(entry: str) -> str:
            if entry in names:
                return f"{PREFIX}{entry} AS {entry}"
            if not IDENTIFIER.fullmatch(entry) and " AS " not in entry:
                raise ValueError(f"staging spec {self.table}: output {entry!r} needs an ' AS <name>'")
            return sql(entry)

        for key in (*self.unique_key, *self.staged_key):
            if key not in names:
                raise ValueError(f"staging spec {self.table}: key {key!r} is not a parsed value")
        return StagingSpec(
            self.table,
            {n: hmac_sql(v.column, pseudonym_key) if isinstance(v, Pseudonym) else v for n, v in self.parsed.items()},
            tuple((sql(condition), reason) for condition, reason in self.rules),
            tuple(PREFIX + k for k in self.unique_key),
            tuple(column(e) for e in self.output),
            tuple(column(e) for e in self.restricted_output),
            sql(self.restricted_where),
            {n: (condition, expr) for n, (condition, expr) in self.parsed_if_needed.items()},
            tuple((PREFIX + k, c) for k, c in self.staged_key.items()),
            sql(self.sensitive) if self.sensitive else None,
            sql(self.sensitive_match) if self.sensitive_match else None,
            {n: v.column for n, v in self.parsed.items() if isinstance(v, Pseudonym)},
        )


def table_spec(table: str, **fields) -> TableSpec:
    """A TableSpec for a contract table; a table the contract does not have is a ValueError."""
    if table not in SOURCE_TABLES:
        raise ValueError(f"staging spec for unknown table {table!r}; expected one of {', '.join(SOURCE_TABLES)}")
    return TableSpec(table, **fields)


# A survey response's own id, stable across runs, folders and the other rows of its file (a row
# number shifts when rows before it go; a file's path moves): who answered, when, and what. The
# same response delivered twice gets one id, and the voice assets count it once.
SURVEY_ID = ("md5(concat_ws('|', {patient_key}, CAST({responded_at} AS VARCHAR), CAST({satisfaction} AS VARCHAR), "
             "CAST({nps} AS VARCHAR), coalesce({comment}, ''))) AS survey_id")

# Rule building blocks ------------------------------------------------------------------

# Tables the sensitive-data policy screens (build_specs), and the parent tables whose sensitive
# rows make their children's rows sensitive.
SCREENED_TABLES = ("products", "orders", "diagnoses", "events", "campaigns", "campaign_contacts", "consents",
                   "surveys")
SCREENED_PARENTS = ("products", "campaigns")
PURPOSE_RULE_REASON = "purpose must be one of"


def _purpose_rule(purposes: tuple[str, ...]) -> tuple[str, str]:
    return (f"{{purpose}} IS NULL OR {{purpose}} NOT IN ({sql_list(purposes)})",
            f"{PURPOSE_RULE_REASON} {', '.join(purposes)}")


def known(table: str, key: str, expr: str) -> str:
    """The referenced row is staged, or withheld as sensitive (a product, a care programme)."""
    staged = f"EXISTS (SELECT 1 FROM staging.{table} k WHERE k.{key} = {expr})"
    if table not in SCREENED_PARENTS:
        return staged
    return f"({staged} OR EXISTS (SELECT 1 FROM restricted.sensitive_{table} k WHERE k.{key} = {expr}))"


def inherited_family(table: str, key: str, expr: str) -> str:
    """The sensitive family of the referenced row (an order line's product, a contact's campaign)."""
    return f"(SELECT max(k.sensitive_family) FROM restricted.sensitive_{table} k WHERE k.{key} = {expr})"


def in_future(name: str) -> str:
    """After the export's as-of time (with a day's tolerance for clocks and time zones)."""
    return f"{{{name}}} > {{{AS_OF}}} + {FUTURE_TOLERANCE}"


def invalid(name: str, raw: str | None = None) -> str:
    """The raw value is there but did not parse."""
    return f"({P.text(raw or name)} IS NOT NULL AND {{{name}}} IS NULL)"


MISSING_PATIENT = ("{patient_id} IS NULL", "patient_id is missing or blank")
UNKNOWN_PATIENT = (f"NOT {known('patients', 'patient_key', '{patient_key}')}", "unknown patient_id (not in patients)")
PATIENT_REF = {"patient_id": P.text("patient_id"), "patient_key": Pseudonym("patient_id")}


SPECS = (
    table_spec(
        "patients",
        parsed={**PATIENT_REF, "gender": P.gender("gender"), "birth_date": P.date("birth_date"),
                "registered_at": P.date("registered_at"), "death_date": P.date("death_date"),
                "city": P.text("city"), "region": P.text("region"), "postal_code": P.text("postal_code"),
                "insurance_type": P.lower_text("insurance_type")},
        rules=(MISSING_PATIENT,
               (invalid("birth_date"), "birth_date is not a valid date"),
               ("{birth_date} > CAST({as_of} AS DATE)", "birth_date is in the future (after the as-of time)"),
               ("{birth_date} < DATE '1900-01-01'", "birth_date is before 1900"),
               (invalid("registered_at"), "registered_at is not a valid date"),
               (in_future("registered_at"), "registered_at is in the future (after the as-of time)"),
               (invalid("death_date"), "death_date is not a valid date")),
        unique_key=("patient_id",),
        output=("patient_key", "gender", "CAST(year({birth_date}) AS INTEGER) AS birth_year", "city", "region",
                "left({postal_code}, 3) AS postal_prefix", "insurance_type", "registered_at",
                "{death_date} IS NOT NULL AS is_deceased", "_source_file", "_source_row"),
        restricted_output=("patient_key", "patient_id", "full_name", "gender", "birth_date", "phone", "email",
                           "address", "city", "region", "postal_code", "insurance_type", "registered_at",
                           "death_date", "_source_file", "_source_row"),
        staged_key={"patient_key": "patient_key"},  # patient_id itself is kept only in restricted
    ),
    table_spec(
        "products",
        parsed={"product_id": P.text("product_id"), "name": P.text("name"), "category": P.category("category"),
                "kind": P.lower_text("kind"), "unit_price": P.number("unit_price"),
                "rx_only": P.boolean("rx_only"), "description": P.text("description")},
        rules=(("{product_id} IS NULL", "product_id is missing or blank"),
               ("{name} IS NULL", "name is missing"),
               ("{category} IS NULL", "category is missing"),
               (invalid("unit_price"), "unit_price is not a number"),
               ("{unit_price} < 0", "unit_price is negative")),
        unique_key=("product_id",),
        output=("product_id", "name", "category", "kind", "unit_price",
                "coalesce({rx_only}, false) AS rx_only", "description"),
    ),
    table_spec(
        "orders",
        parsed={"order_id": P.text("order_id"), **PATIENT_REF, "product_id": P.text("product_id"),
                "line_no": P.integer("line_no"), "ordered_at": P.timestamp("ordered_at"),
                "quantity": P.integer("quantity"), "unit_price": P.number("unit_price"),
                "channel": P.order_channel("channel"), "facility_id": P.text("facility_id")},
        rules=(("{order_id} IS NULL", "order_id is missing or blank"),
               ("{line_no} IS NULL OR {line_no} < 1", "line_no is not a whole number ≥ 1"),
               MISSING_PATIENT,
               ("{product_id} IS NULL", "product_id is missing or blank"),
               ("{ordered_at} IS NULL", "ordered_at is missing or not a valid timestamp"),
               (in_future("ordered_at"), "ordered_at is in the future (after the as-of time)"),
               (invalid("quantity"), "quantity is not a whole number"),
               ("{quantity} <= 0", "quantity is zero or negative (cancellation or return)"),
               (invalid("unit_price"), "unit_price is not a number"),
               ("{unit_price} < 0", "unit_price is negative"),
               UNKNOWN_PATIENT,
               (f"NOT {known('products', 'product_id', '{product_id}')}", "unknown product_id (not in products)")),
        unique_key=("order_id", "line_no"),
        output=("order_id", "CAST({line_no} AS INTEGER) AS line_no", "patient_key", "product_id", "ordered_at",
                "CAST(coalesce({quantity}, 1) AS INTEGER) AS quantity",
                "coalesce({unit_price}, (SELECT p.unit_price FROM staging.products p "
                "WHERE p.product_id = {product_id}), (SELECT p.unit_price FROM restricted.sensitive_products p "
                "WHERE p.product_id = {product_id})) AS unit_price",
                "channel", "facility_id", "_source_file", "_source_row"),
        # exports without line numbers: number each order's lines in file order (a window
        # over every row, so only when some line number is actually blank)
        parsed_if_needed={"line_no": (
            f"{P.text('line_no')} IS NULL",
            f"coalesce({P.integer('line_no')}, CASE WHEN {P.text('line_no')} IS NULL THEN row_number() OVER "
            f"(PARTITION BY {P.text('order_id')} ORDER BY rowid) END)")},
    ),
    table_spec(
        "diagnoses",
        parsed={**PATIENT_REF, "condition_code": P.text("condition_code"),
                "condition_name": P.text("condition_name"), "diagnosed_at": P.date("diagnosed_at")},
        rules=(MISSING_PATIENT,
               ("{condition_code} IS NULL", "condition_code is missing"),
               (invalid("diagnosed_at"), "diagnosed_at is not a valid date"),
               (in_future("diagnosed_at"), "diagnosed_at is in the future (after the as-of time)"),
               UNKNOWN_PATIENT),
        unique_key=("patient_key", "condition_code", "diagnosed_at"),
        output=("patient_key", "condition_code", "condition_name", "diagnosed_at"),
    ),
    table_spec(
        "campaigns",
        parsed={"campaign_id": P.text("campaign_id"), "name": P.text("name"), "purpose": P.lower_text("purpose"),
                "channel": P.campaign_channel("channel"), "raw_channel": P.text("channel"),
                "target_category": P.category("target_category"), "start_date": P.date("start_date"),
                "end_date": P.date("end_date"), "cost_per_contact": P.number("cost_per_contact")},
        rules=(("{campaign_id} IS NULL", "campaign_id is missing or blank"),
               _purpose_rule(CAMPAIGN_PURPOSES),
               ("{raw_channel} IS NOT NULL AND {channel} IS NULL",
                f"channel must be one of {', '.join(CAMPAIGN_CHANNELS)}"),
               (invalid("start_date"), "start_date is not a valid date"),
               (invalid("end_date"), "end_date is not a valid date"),
               ("{end_date} < {start_date}", "end_date is before start_date"),
               (invalid("cost_per_contact"), "cost_per_contact is not a number"),
               ("{cost_per_contact} < 0", "cost_per_contact is negative")),
        unique_key=("campaign_id",),
        output=("campaign_id", "name", "purpose", "channel", "target_category", "start_date", "end_date",
                "coalesce({cost_per_contact}, 0) AS cost_per_contact"),
    ),
    table_spec(
        "campaign_contacts",
        parsed={"campaign_id": P.text("campaign_id"), **PATIENT_REF, "arm": P.lower_text("arm"),
                "contacted_at": P.timestamp("contacted_at"), "opened": P.boolean("opened"),
                "clicked": P.boolean("clicked"), "converted": P.boolean("converted"),
                "converted_at": P.timestamp("converted_at"), "revenue": P.number("revenue")},
        rules=(("{campaign_id} IS NULL", "campaign_id is missing or blank"),
               MISSING_PATIENT,
               (f"{{arm}} IS NULL OR {{arm}} NOT IN ({sql_list(CONTACT_ARMS)})", "arm must be treatment or control"),
               (invalid("converted"), "converted is not a boolean"),
               (invalid("contacted_at"), "contacted_at is not a valid timestamp"),
               (invalid("converted_at"), "converted_at is not a valid timestamp"),
               (invalid("revenue"), "revenue is not a number"),
               ("{revenue} < 0", "revenue is negative"),
               (f"NOT {known('campaigns', 'campaign_id', '{campaign_id}')}", "unknown campaign_id (not in campaigns)"),
               UNKNOWN_PATIENT),
        unique_key=("campaign_id", "patient_key"),
        output=("campaign_id", "patient_key", "arm", "contacted_at", "coalesce({opened}, false) AS opened",
                "coalesce({clicked}, false) AS clicked", "coalesce({converted}, false) AS converted",
                "converted_at", "coalesce({revenue}, 0) AS revenue"),
    ),
    table_spec(
        "consents",
        parsed={**PATIENT_REF, "purpose": P.lower_text("purpose"),
                "channel": f"coalesce(CASE WHEN {P.lower_text('channel')} = 'all' THEN 'all' END, "
                           f"{P.campaign_channel('channel')}, {P.lower_text('channel')}, 'all')",
                "status": P.lower_text("status"), "recorded_at": P.timestamp("recorded_at")},
        rules=(MISSING_PATIENT,
               ("{purpose} IS NULL", "purpose is missing"),
               (f"{{status}} IS NULL OR {{status}} NOT IN ({sql_list(CONSENT_STATUSES)})",
                "status must be granted or revoked"),
               ("{recorded_at} IS NULL", "recorded_at is missing or not a valid timestamp"),
               (in_future("recorded_at"), "recorded_at is in the future (after the as-of time)"),
               UNKNOWN_PATIENT),
        output=("patient_key", "purpose", "channel", "status", "recorded_at"),
    ),
    table_spec(
        "surveys",
        parsed={**PATIENT_REF, "responded_at": P.timestamp("responded_at"),
                "satisfaction": P.integer("satisfaction"), "nps": P.integer("nps"), "comment": P.text("comment")},
        rules=(MISSING_PATIENT,
               (invalid("responded_at"), "responded_at is not a valid timestamp"),
               (invalid("satisfaction") + " OR {satisfaction} NOT BETWEEN 1 AND 5",
                "satisfaction must be a whole number 1-5"),
               (invalid("nps") + " OR {nps} NOT BETWEEN 0 AND 10", "nps must be a whole number 0-10"),
               UNKNOWN_PATIENT),
        # the comment is free text that may name people: only restricted.surveys holds it, until
        # lib.voice.deidentify has replaced its identifiers (features.survey_comments)
        output=(SURVEY_ID, "patient_key", "responded_at", "CAST({satisfaction} AS INTEGER) AS satisfaction",
                "CAST({nps} AS INTEGER) AS nps", "{comment} IS NOT NULL AS has_comment"),
        restricted_output=(SURVEY_ID, "patient_key", "responded_at", "comment"),
        restricted_where="{comment} IS NOT NULL",
    ),
    table_spec(
        "events",
        parsed={**PATIENT_REF, "occurred_at": P.timestamp("occurred_at"), "event_type": P.lower_text("event_type"),
                "source": P.lower_text("source"), "product_id": P.text("product_id"),
                "category": P.category("category"), "query": P.text("query")},
        rules=(("{occurred_at} IS NULL", "occurred_at is missing or not a valid timestamp"),
               (in_future("occurred_at"), "occurred_at is in the future (after the as-of time)"),
               (f"{{event_type}} IS NULL OR {{event_type}} NOT IN ({sql_list(EVENT_TYPES)})",
                f"event_type must be one of {', '.join(EVENT_TYPES)}"),
               (f"{{source}} IS NOT NULL AND {{source}} NOT IN ({sql_list(EVENT_SOURCES)})",
                f"source must be one of {', '.join(EVENT_SOURCES)}"),
               (f"{{patient_key}} IS NOT NULL AND NOT {known('patients', 'patient_key', '{patient_key}')}",
                "unknown patient_id (not in patients)")),
        # search queries are free text too: restricted.events holds them (lib.voice.search reads them
        # de-identified); staging keeps only whether there was one
        output=("patient_key", "occurred_at", "event_type", "source", "product_id", "category",
                "{query} IS NOT NULL AS has_query"),
        restricted_output=("patient_key", "occurred_at", "category", "query"),
        restricted_where="{query} IS NOT NULL",
    ),
)


def screened(spec: TableSpec, policy: SensitivePolicy) -> TableSpec:
    """The spec with the policy's screen: rows of a sensitive family go to restricted.sensitive_<table>
    (staging.publish), never to staging; campaigns may also have a care programme's purpose."""
    if spec.table == "diagnoses":
        family = policy.condition_family("{condition_code}", "{condition_name}")
        match = policy.condition_match("{condition_code}", "{condition_name}")
    elif spec.table == "products":
        family = policy.product_family("{product_id}", "{name}", "{category}", "{description}")
        match = policy.product_match("{product_id}", "{name}", "{category}", "{description}")
    elif spec.table == "orders":
        family, match = inherited_family("products", "product_id", "{product_id}"), "'product'"
    elif spec.table == "events":
        product = inherited_family("products", "product_id", "{product_id}")
        family = f"coalesce({product}, {policy.category_family('{category}')}, {policy.text_family('{query}')})"
        match = (f"CASE WHEN {product} IS NOT NULL THEN 'product' WHEN {policy.category_family('{category}')} "
                 "IS NOT NULL THEN 'category' ELSE 'search query' END")
    elif spec.table == "campaigns":
        rules = tuple(_purpose_rule(CAMPAIGN_PURPOSES + policy.care_purposes)
                      if reason.startswith(PURPOSE_RULE_REASON) else (condition, reason)
                      for condition, reason in spec.rules)
        # a care programme's campaign, or one aimed at a sensitive category (marketing it is targeting by it)
        care, category = policy.care_family("{purpose}"), policy.category_family("{target_category}")
        return replace(spec, rules=rules, sensitive=f"coalesce({care}, {category})",
                       sensitive_match=f"CASE WHEN {care} IS NOT NULL THEN 'care programme' ELSE 'category' END")
    elif spec.table == "campaign_contacts":
        family, match = inherited_family("campaigns", "campaign_id", "{campaign_id}"), "'campaign'"
    elif spec.table == "consents":
        family, match = policy.care_family("{purpose}"), "'care programme'"
    elif spec.table == "surveys":
        # a comment that speaks of a sensitive condition: the whole response stays out of analytics
        family, match = policy.text_family("{comment}"), "'comment'"
    else:
        return spec
    return replace(spec, sensitive=family, sensitive_match=match)


def holds_patients(table: str) -> bool:
    """Whether staging `table` pseudonymizes a patient id, i.e. needs the pseudonym key (products and
    campaigns hold no patients: staging them neither needs the key nor warns that it is missing)."""
    return any(isinstance(v, Pseudonym) for spec in SPECS if spec.table == table for v in spec.parsed.values())


def build_specs(pseudonym_key: str, as_of: datetime, policy: SensitivePolicy) -> dict[str, StagingSpec]:
    """Staging rules for every canonical table; patient ids are pseudonymized with the key, dates judged
    against the as-of time, and the sensitive-data policy decides which rows are withheld from everything
    after staging."""
    specs = {spec.table: screened(spec, policy).bind(pseudonym_key, as_of) for spec in SPECS}
    missing = set(SOURCE_TABLES) - set(specs)
    if missing:
        raise ValueError(f"no staging spec for {', '.join(sorted(missing))}")
    return specs
