"""Sensitive conditions never drive marketing: the policy's known answers, staging's screen, the demo
world's planted sensitive signal kept out of every marketing output, the counterfactual run, and the
care programme that may use it with consent."""
from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import mlflow
import pandas as pd
import pytest

from medmkt_assets.bench.compare import differences
from medmkt_assets.definitions import build_definitions
from medmkt_assets.defs.resources import SourceFiles
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.ops.sensitive_use import (
    PUBLISHED_MARTS,
    feature_leaks,
    marts_leaks,
)
from medmkt_assets.lib.privacy.pseudonym import pseudonymize
from medmkt_assets.lib.privacy.sensitive import PolicyError, load_policy
from medmkt_assets.settings import Settings
from medmkt_assets_tests.conftest import (
    TEST_KEY,
    make_resources,
    materialize_all,
    row_accounting,
)

POLICY = load_policy()


def _family(sql: str, **values) -> str | None:
    return duckdb.connect().execute(f"SELECT {sql}", values).fetchone()[0]


@pytest.mark.parametrize("code, name, family", [
    ("F11.20", "Opioid dependence", "substance_use"),        # ICD-10-CM inside a range
    ("f1120", None, "substance_use"),                         # dots and case ignored
    ("B20", None, "hiv_sti"),
    ("O03.9", "Spontaneous abortion", "reproductive_health"),  # O00-O9A
    ("Z3A.20", None, "reproductive_health"),
    ("T40.1X1A", None, "substance_use"),                      # T40.0-T40.6: heroin poisoning
    ("72892002", "Normal pregnancy", "reproductive_health"),  # SNOMED CT, as Synthea writes it
    ("706893006", "Victim of intimate partner abuse (finding)", "abuse_violence"),
    ("4152280", None, "mental_health"),                       # an OMOP concept id
    ("LOCAL-17", "Misuses drugs (finding)", "substance_use"), # a local code: the name decides
    ("X1", "艾滋病", "hiv_sti"),
    ("E11", "Type 2 diabetes mellitus", None),
    ("I10", "Essential hypertension", None),
    ("73595000", "Stress (finding)", None),
    ("T41", "Poisoning by anaesthetics", None),               # outside T40.0-T40.6
])
def test_diagnoses_match_their_family_in_every_vocabulary(code, name, family):
    assert _family(POLICY.condition_family("$code", "$name"), code=code, name=name) == family


@pytest.mark.parametrize("name, category, family", [
    ("Sertraline 50 mg tablets", "wellbeing", "mental_health"),
    ("Contraceptive pill", "womens_health", "reproductive_health"),
    ("Mirena 52 MG Intrauterine System", "other", "reproductive_health"),
    ("Buprenorphine/naloxone 8 mg/2 mg film", "wellbeing", "substance_use"),
    ("Human immunodeficiency virus antigen test", "checkup", "hiv_sti"),
    ("Anything", "Mental_Health", "mental_health"),           # the category alone reveals it
    ("Losartan 50 mg tablets", "cardiology", None),
    ("Mindfulness app subscription", "wellbeing", None),
    ("Abuse-Deterrent 12 HR Oxycodone Hydrochloride 15 MG", "pain_relief", None),
])
def test_products_that_reveal_a_family(name, category, family):
    assert _family(POLICY.product_family("'P1'", "$name", "$category", "NULL"), name=name,
                   category=category) == family


@pytest.mark.parametrize("query, family", [("孕检", "reproductive_health"), ("焦虑 怎么办", "mental_health"),
                                           ("hiv test near me", "hiv_sti"), ("失眠", None), ("mammogram", None)])
def test_search_queries_in_both_languages(query, family):
    assert _family(POLICY.text_family("$q"), q=query) == family


def test_every_family_says_why_and_care_programmes_name_a_family():
    assert {f.name for f in POLICY.families} >= {"hiv_sti", "substance_use", "mental_health",
                                                 "reproductive_health", "abuse_violence", "genetics"}
    assert all(f.why and ("CFR" in f.why or "GDPR" in f.why or "GINA" in f.why) for f in POLICY.families)
    assert {p.family for p in POLICY.care_programmes} <= {f.name for f in POLICY.families}


@pytest.mark.parametrize("body, expected", [
    ("families: [1]", "non-empty `families` mapping"),
    ("families:\n  x:\n    label: X\n", "families.x: `why` is required"),
    ("families:\n  x:\n    why: y\n    icd10: [F10-G]\n", "families.x.icd10: 'F10-G' is not an ICD-10"),
    ("families:\n  x:\n    why: y\n    icd10: [F19-F10]\n", "low first"),
    ("families:\n  x:\n    why: y\n    colour: red\n", "unknown key(s) colour"),
    ("families:\n  x:\n    why: y\n    names: ['\\\\bhiv']\n", "may not hold a backslash"),
    ("families:\n  x:\n    why: y\ncare_programmes:\n  p:\n    family: z\n    purpose: q\n", "family 'z' is not"),
    ("families: {x: [", "not valid YAML"),
])
def test_a_broken_policy_is_refused_naming_the_file_and_the_key(tmp_path, body, expected):
    path = tmp_path / "policy.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    assert str(path) in str(error.value) and expected in str(error.value)


def test_a_replaced_policy_is_the_one_applied(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("families:\n  allergy:\n    why: a team's own rule\n    icd10: [Z88]\n", encoding="utf-8")
    policy = load_policy(path)
    assert _family(policy.condition_family("'Z88.0'", "NULL")) == "allergy"
    assert _family(policy.condition_family("'F11.20'", "'Opioid dependence'")) is None


# --- staging: the screen on a tiny source ----------------------------------------------------

TINY = {
    "patients": """\
        patient_id,full_name,gender,birth_date,phone,registered_at
        P1,A,F,1980-01-01,+86 1,2023-01-01
        P2,B,M,1990-01-01,+86 2,2023-01-01
        """,
    "products": """\
        product_id,name,category,kind,unit_price
        A,Metformin 500 mg,diabetes_care,drug,10
        S,Sertraline 50 mg tablets,wellbeing,drug,20
        K,Anything,mental_health,service,30
        """,
    "orders": """\
        order_id,line_no,patient_id,product_id,ordered_at,quantity,unit_price
        O1,1,P1,A,2024-01-10,1,10
        O1,2,P1,S,2024-01-10,1,
        O2,1,P2,K,2024-02-10,1,30
        O3,1,P2,A,2024-02-11,1,10
        """,
    "diagnoses": """\
        patient_id,condition_code,condition_name,diagnosed_at
        P1,E11,Type 2 diabetes,2020-01-01
        P1,F11.20,Opioid dependence,2021-01-01
        P2,72892002,Normal pregnancy,2022-01-01
        """,
    "campaigns": """\
        campaign_id,name,purpose,channel,target_category,start_date,end_date
        C1,Spring offer,marketing,sms,diabetes_care,2024-03-01,2024-03-31
        C2,Recovery support,care_opioid_recovery,sms,wellbeing,2024-04-01,2024-04-30
        C3,Bad purpose,care_unknown,sms,wellbeing,2024-04-01,2024-04-30
        C4,Mood week,marketing,sms,Mental Health,2024-05-01,2024-05-31
        """,
    "campaign_contacts": """\
        campaign_id,patient_id,arm,converted
        C1,P1,treatment,true
        C2,P1,treatment,false
        """,
    "consents": """\
        patient_id,purpose,channel,status,recorded_at
        P1,marketing,all,granted,2023-01-01
        P1,care_opioid_recovery,all,granted,2023-01-01
        """,
    "surveys": """\
        patient_id,responded_at,satisfaction,nps,comment
        P1,2024-02-01,4,9,拿抑郁症的药时护士很耐心
        P2,2024-02-02,5,10,送药很快
        """,
    "events": """\
        patient_id,occurred_at,event_type,source,product_id,category,query
        P1,2024-01-01,page_view,web,S,,
        P2,2024-01-02,search,web,,,孕检
        P2,2024-01-03,search,web,,,blood glucose meter
        P1,2024-01-04,page_view,web,A,,
        """,
}


def test_staging_moves_sensitive_rows_to_restricted_and_loses_none(tmp_path, pseudonym_env):
    source = tmp_path / "source"
    source.mkdir()
    for table, body in TINY.items():
        (source / f"{table}.csv").write_text(textwrap.dedent(body), encoding="utf-8")
    warehouse = tmp_path / "warehouse.duckdb"
    result = materialize_all(build_definitions(Settings.from_env()),
                             make_resources(source, warehouse, f"sqlite:///{tmp_path / 'mlflow.db'}"),
                             dg.AssetSelection.groups("ingest", "staging"))
    assert result.success
    con = duckdb.connect(str(warehouse), read_only=True)
    rows = lambda sql: sorted(con.execute(sql).fetchall())  # noqa: E731
    assert rows("SELECT product_id FROM staging.products") == [("A",)]
    assert rows("SELECT product_id, sensitive_family, sensitive_match FROM restricted.sensitive_products") == [
        ("K", "mental_health", "category"), ("S", "mental_health", "product name")]
    assert rows("SELECT order_id, line_no FROM staging.orders") == [("O1", 1), ("O3", 1)]
    # an order line of a withheld product is withheld, its price still found from the product
    assert rows("SELECT order_id, line_no, unit_price, sensitive_family FROM restricted.sensitive_orders") == [
        ("O1", 2, 20.0, "mental_health"), ("O2", 1, 30.0, "mental_health")]
    assert rows("SELECT condition_code FROM staging.diagnoses") == [("E11",)]
    assert rows("SELECT condition_code, sensitive_family FROM restricted.sensitive_diagnoses") == [
        ("72892002", "reproductive_health"), ("F11.20", "substance_use")]
    assert rows("SELECT campaign_id FROM staging.campaigns") == [("C1",)]
    assert rows("SELECT campaign_id, sensitive_match FROM restricted.sensitive_campaigns") == [
        ("C2", "care programme"), ("C4", "category")]  # marketing aimed at a sensitive category is withheld too
    assert rows("SELECT campaign_id, _reason FROM quarantine.campaigns")[0][0] == "C3"
    assert rows("SELECT campaign_id FROM staging.campaign_contacts") == [("C1",)]
    assert rows("SELECT campaign_id FROM restricted.sensitive_campaign_contacts") == [("C2",)]
    assert rows("SELECT purpose FROM staging.consents") == [("marketing",)]
    assert rows("SELECT purpose FROM restricted.sensitive_consents") == [("care_opioid_recovery",)]
    # a search query is free text: staging keeps that there was one, restricted.events the words
    assert rows("SELECT coalesce(product_id, '-'), has_query FROM staging.events") == [("-", True), ("A", False)]
    assert rows("SELECT query FROM restricted.events") == [("blood glucose meter",)]
    # a survey comment that speaks of a sensitive condition withholds the whole response
    assert rows("SELECT satisfaction FROM staging.surveys") == [(5,)]
    assert rows("SELECT comment FROM restricted.surveys") == [("送药很快",)]
    assert rows("SELECT sensitive_family, sensitive_match FROM restricted.sensitive_surveys") == [
        ("mental_health", "comment")]
    assert rows("SELECT sensitive_family, sensitive_match FROM restricted.sensitive_events") == [
        ("mental_health", "product"), ("reproductive_health", "search query")]
    for table in TINY:
        raw, accounted = row_accounting(con, table)
        assert raw == accounted, table


# --- the demo world: the planted sensitive signal never reaches marketing ---------------------

def _truth(demo_pipeline) -> dict:
    return json.loads((demo_pipeline["truth"] / "sensitive.json").read_text())


def test_no_marketing_output_carries_the_planted_sensitive_signal(demo_pipeline):
    assert demo_pipeline["result"].success
    truth = _truth(demo_pipeline)
    con = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    targets = {t for (t,) in con.execute("SELECT DISTINCT target FROM marts.propensity_scores").fetchall()}
    assert targets and not targets & {"risk:F11.20", "risk:F32", truth["care_campaign"]}
    withheld = {p for (p,) in con.execute("SELECT product_id FROM restricted.sensitive_products").fetchall()}
    assert truth["treatment_product"] in withheld and len(withheld) == 1 + len(truth["other_sensitive_products"])
    rules = con.execute("SELECT antecedents, consequents FROM marts.association_rules").fetchall()
    items = {i for a, c in rules for i in (*a, *c)}
    assert rules and not items & (withheld | {"condition:F11.20", "condition:F32"})
    assert not {p for (p,) in con.execute("SELECT DISTINCT product_id FROM marts.recommendations").fetchall()} & withheld
    assert not {c for (c,) in con.execute("SELECT condition_code FROM marts.condition_catalog").fetchall()} & {
        "F11.20", "F32"}
    assert not [c for c in con.execute("DESCRIBE features.patient_features").fetchdf().column_name
                if c in ("cond__f11_20", "cond__f32")]
    session = Session(con)
    assert marts_leaks(session, POLICY, list(PUBLISHED_MARTS)) == {} and feature_leaks(session, POLICY) == []
    exports = demo_pipeline["root"] / "exports"
    assert not list(exports.glob(f"*{truth['care_campaign']}*"))
    con.close()


def test_the_leak_check_ran_and_every_mart_it_knows_is_published(demo_pipeline):
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed
              for e in demo_pipeline["result"].get_asset_check_evaluations()}
    assert checks[("ops/sensitive_use", "no_sensitive_data_in_marketing")] is True
    con = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    published = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'marts'").fetchall()}
    assert published == set(PUBLISHED_MARTS)
    use = con.execute("SELECT family, source_table, rows_withheld FROM ops.sensitive_use "
                      "WHERE rows_withheld > 0").fetchall()
    assert {("substance_use", "diagnoses"), ("mental_health", "diagnoses"),
            ("reproductive_health", "orders")} <= {(f, t) for f, t, _ in use}
    con.close()


def test_no_mlflow_run_names_a_sensitive_code_or_product(demo_pipeline):
    truth = _truth(demo_pipeline)
    mlflow.set_tracking_uri(f"sqlite:///{demo_pipeline['root'] / 'mlflow' / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True)
    assert len(runs)
    text = " ".join(str(v) for v in runs.filter(regex=r"^(params|tags)\.").to_numpy().ravel())
    for term in ("F11.20", "F32", truth["treatment_product"], truth["treatment_name"], "opioid", "Opioid"):
        assert term not in text


def test_without_the_policy_the_signal_would_be_the_top_new_diagnosis(demo_pipeline):
    """The planted signal is strong: in the year before the data's as-of time F11.20 has more new
    diagnoses than any condition marketing may use (so the test above is not passing by luck)."""
    con = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    new = dict(con.execute("""
        WITH a AS (SELECT max(as_of) AS as_of FROM marts.patient_profiles),
        d AS (SELECT patient_key, condition_code, diagnosed_at FROM staging.diagnoses
              UNION ALL SELECT patient_key, condition_code, diagnosed_at FROM restricted.sensitive_diagnoses),
        first AS (SELECT patient_key, condition_code, min(diagnosed_at) AS first_at FROM d GROUP BY ALL)
        SELECT condition_code, count(*) FROM first, a WHERE first_at > a.as_of - INTERVAL 365 DAY GROUP BY 1""").fetchall())
    con.close()
    assert max(new, key=new.get) == "F11.20"


def test_the_care_programme_reaches_exactly_the_consenting_patients(demo_pipeline):
    truth = pd.read_csv(demo_pipeline["truth"] / "sensitive_patients.csv", dtype={"patient_id": str})
    truth["patient_key"] = truth.patient_id.str.strip().map(lambda p: pseudonymize(p, demo_pipeline["key"]))
    con = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    audience = con.execute("SELECT campaign_id, patient_key, family, priority_rank, days_since_last_fill "
                           "FROM restricted.care_programme_audiences").fetchdf()
    living = {k for (k,) in con.execute("SELECT patient_key FROM staging.patients WHERE NOT is_deceased").fetchall()}
    con.close()
    consented = set(truth[truth.care_consent == 1].patient_key) & living
    assert len(consented) > 20
    assert set(audience.patient_key) == consented
    assert set(audience.campaign_id) == {_truth(demo_pipeline)["care_campaign"]}
    assert (audience.family == "substance_use").all()
    assert sorted(audience.priority_rank) == list(range(1, len(audience) + 1))
    first = audience.sort_values("priority_rank").days_since_last_fill
    assert first.is_monotonic_decreasing or first.isna().any()  # the longest gap (or never filled) first


def test_the_insight_snapshot_holds_nothing_of_the_care_programme(demo_pipeline):
    snapshot = demo_pipeline["root"] / "insight" / "insight.duckdb"
    con = duckdb.connect(str(snapshot), read_only=True)
    tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    care = _truth(demo_pipeline)["care_campaign"]
    for table in tables:
        text = con.execute(f"SELECT string_agg(CAST(t AS VARCHAR), ' ') FROM (SELECT * FROM \"{table}\" LIMIT 5000) t"
                           ).fetchone()[0] or ""
        # whole codes only: facility FAC009 holds the letters of campaign C009
        assert not re.search(rf"(?<![A-Za-z0-9]){care}(?![0-9])", text), table
        assert "care_opioid" not in text and "F11.20" not in text, table
    con.close()


def _without_sensitive_rows(source: Path, target: Path) -> None:
    """A copy of a canonical source with every row the policy would withhold deleted."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("_truth"))
    con = duckdb.connect()
    read = lambda t: f"read_csv('{source / t}.csv', all_varchar=true, header=true)"  # noqa: E731
    keep = {
        "diagnoses": f"{POLICY.condition_family('condition_code', 'condition_name')} IS NULL",
        "products": f"{POLICY.product_family('product_id', 'name', 'category', 'description')} IS NULL",
        "campaigns": (f"{POLICY.care_family('trim(purpose)')} IS NULL AND "
                      f"{POLICY.category_family('target_category')} IS NULL"),
        "consents": f"{POLICY.care_family('trim(purpose)')} IS NULL",
    }
    sensitive_products = f"SELECT product_id FROM {read('products')} WHERE NOT ({keep['products']})"
    keep["orders"] = f"coalesce(product_id, '') NOT IN ({sensitive_products})"
    keep["events"] = (f"coalesce(product_id, '') NOT IN ({sensitive_products}) AND "
                      f"{POLICY.category_family('category')} IS NULL AND {POLICY.text_family('query')} IS NULL")
    keep["surveys"] = f"{POLICY.text_family('comment')} IS NULL"
    keep["campaign_contacts"] = (f"campaign_id NOT IN (SELECT campaign_id FROM {read('campaigns')} "
                                 f"WHERE NOT ({keep['campaigns']}))")
    for table, condition in keep.items():
        frame = con.execute(f"SELECT * FROM {read(table)} WHERE {condition}").fetchdf()
        frame.to_csv(target / f"{table}.csv", index=False)


def test_marketing_outputs_are_exactly_those_of_a_world_without_the_sensitive_rows(demo_pipeline, tmp_path):
    """The counterfactual: delete every sensitive row from the source and run again; every marts and
    features table is the same, cell for cell (so no patient's scores, segments, recommendations or
    audiences depend on their sensitive rows)."""
    source = tmp_path / "source"
    _without_sensitive_rows(demo_pipeline["source"], source)
    warehouse = tmp_path / "warehouse.duckdb"
    # The export's as-of time is a fact of the export (its extraction), not of any patient: the same
    # in both runs (the deleted rows here include the export's very last event).
    con = duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True)
    as_of = con.execute("SELECT as_of FROM staging.as_of").fetchone()[0].isoformat(sep=" ")
    con.close()
    resources = make_resources(source, warehouse, f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    resources["sources"] = SourceFiles(source_dir=str(source), incoming_dir=str(tmp_path / "incoming"), as_of=as_of)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDMKT_TEST_PSEUDONYM_KEY", TEST_KEY)
        result = materialize_all(build_definitions(Settings.from_env()), resources)
    assert result.success
    # staging differs only in its lineage columns (_source_file, _source_row of a shorter file); an
    # average over the same rows read in another physical order (the shorter files) may differ in its
    # last bits (about 1e-15 of it), which says nothing about the sensitive rows: rtol 1e-9
    assert differences(str(demo_pipeline["warehouse"]), str(warehouse), rtol=1e-9,
                       schemas=("marts", "features")) == []
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM restricted.sensitive_diagnoses").fetchone()[0] == 0
    con.close()
