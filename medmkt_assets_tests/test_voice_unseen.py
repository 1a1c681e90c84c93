"""Patient voice on comments the demo never writes: other topics and words, identifiers in other
formats, a driver planted on the visit channel. The whole graph runs on a demo world whose surveys
are replaced by these."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from medmkt_assets_tests.conftest import TEST_KEY, make_resources, materialize_all
from medmkt_assets.lib.privacy.identifiers import PRIVATE_SCHEMA_PREFIXES

# topic -> (key terms, negative phrasings, positive phrasings); none is a demo sentence
TOPICS = {
    "billing": (("账单", "发票", "bill", "invoice"),
                ["账单算错了，多扣了钱", "发票开错了，退款很慢", "I was charged twice on my bill", "the invoice had errors again"],
                ["账单清楚明白", "发票开得很快", "the bill was clear and correct", "invoice arrived promptly"]),
    "pharmacist": (("药剂师", "pharmacist"),
                   ["药剂师没说清楚怎么吃药", "药剂师不耐烦", "the pharmacist gave no advice", "pharmacist was dismissive"],
                   ["药剂师讲解用药方法很仔细", "药剂师提醒了副作用", "the pharmacist explained the dosage",
                    "a helpful pharmacist checked my other medicines"]),
    "ward_noise": (("走廊", "吵", "noise", "noisy"),
                   ["晚上走廊很吵，睡不着", "病房外面太吵", "constant noise in the corridor at night", "too noisy to sleep"],
                   ["晚上很安静，休息得好", "病房安静", "quiet at night, slept well", "no noise in the ward"]),
}
PHONE_EFFECT = -0.8   # planted: a visit by phone rates 0.8 lower than any other channel


def _identifiers(row, rng) -> tuple[str, str]:
    """(carrier text, identifier) in formats the demo does not use."""
    kind = int(rng.integers(7))
    if kind == 0:
        return f"患者{row.full_name}反映", row.full_name
    if kind == 1:
        number = "139" + "".join(map(str, rng.integers(0, 10, 8)))
        return f"电话：(+86){number[:3]}-{number[3:7]}-{number[7:]}", f"{number[:3]}-{number[3:7]}-{number[7:]}"
    if kind == 2:
        email = f"li.{int(rng.integers(10_000, 99_999))}@qq.com"
        return f"contact {email}", email
    if kind == 3:
        return "身份证 11010519491231002X", "11010519491231002X"
    if kind == 4:
        card = "SB" + "".join(map(str, rng.integers(0, 10, 8)))
        return f"社保卡号 {card}", card
    if kind == 5:
        return "家住朝阳区建国路88号院2号楼", "建国路88号"
    return "tel 021-6543 2198", "6543 2198"


@pytest.fixture(scope="module")
def unseen(tmp_path_factory):
    from medmkt_assets.definitions import build_definitions
    from medmkt_assets.demo_data import generate
    from medmkt_assets.settings import Settings

    root = tmp_path_factory.mktemp("voice_unseen")
    source = root / "source"
    generate(source, patients=2500, seed=11, with_bad_rows=False)
    patients = pd.read_csv(source / "patients.csv", dtype=str)
    orders = pd.read_csv(source / "orders.csv", dtype=str)
    visits = orders[orders.line_no == "1"].assign(ordered=lambda o: pd.to_datetime(o.ordered_at))
    rng = np.random.default_rng(5)
    chosen = visits.sample(n=1400, random_state=5).sort_values("ordered")
    names = list(TOPICS)
    rows, planted = [], []
    by_id = patients.set_index(patients.patient_id.str.strip())
    for visit in chosen.itertuples():
        responded = visit.ordered + pd.Timedelta(minutes=30)
        mine = visits[visits.patient_id == visit.patient_id]
        latest = mine[mine.ordered <= responded].ordered.max()
        channel = mine[mine.ordered == latest].channel.iloc[0]
        mean = 3.8 + (PHONE_EFFECT if channel == "phone" else 0.0)
        latent = mean + (1.0 if rng.random() < 0.5 else -1.0)  # spread without bias, within 1-5
        satisfaction = int(np.floor(latent) + (rng.random() < latent - np.floor(latent)))
        positive = rng.random() < {1: 0.05, 2: 0.1, 3: 0.5, 4: 0.9, 5: 0.95}[satisfaction]
        topic = TOPICS[names[rng.integers(len(names))]]
        comment = str(rng.choice(topic[2] if positive else topic[1]))
        if rng.random() < 0.15:
            carrier, value = _identifiers(by_id.loc[visit.patient_id.strip()], rng)
            comment = f"{carrier}，{comment}"
            planted.append(value)
        rows.append({"patient_id": visit.patient_id, "responded_at": responded.isoformat(sep=" "),
                     "satisfaction": satisfaction, "nps": min(10, 2 * satisfaction), "comment": comment,
                     "channel": channel})
    surveys = pd.DataFrame(rows)
    surveys.drop(columns=["channel"]).to_csv(source / "surveys.csv", index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDMKT_TEST_PSEUDONYM_KEY", TEST_KEY)
        resources = make_resources(source, root / "warehouse.duckdb", f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
        result = materialize_all(build_definitions(Settings.from_env()), resources)
    assert result.success
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    yield {"con": con, "planted": planted, "surveys": surveys, "root": root}
    con.close()


def test_no_identifier_in_an_unseen_format_survives(unseen):
    con, planted = unseen["con"], unseen["planted"]
    assert len(planted) > 100
    restricted = "\n".join(r[0] for r in con.execute("SELECT comment FROM restricted.surveys").fetchall())
    assert all(value in restricted for value in planted)
    leaks = []
    for schema, table, column in con.execute("SELECT table_schema, table_name, column_name FROM "
                                             "information_schema.columns WHERE data_type LIKE 'VARCHAR%'").fetchall():
        if schema.startswith(PRIVATE_SCHEMA_PREFIXES):
            continue
        text = "\n".join(r[0] for r in con.execute(f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM '
                                                   f'"{schema}"."{table}" WHERE "{column}" IS NOT NULL').fetchall())
        leaks += [(f"{schema}.{table}.{column}", v) for v in set(planted) if v in text]
    assert leaks == []


def test_unseen_topics_are_found_with_their_words(unseen):
    topics = unseen["con"].execute("SELECT label, top_terms FROM marts.voice_topics").fetchdf()
    for name, (keys, _, _) in TOPICS.items():
        assert any(set(keys) & set(list(terms)[:6]) for terms in topics.top_terms), (name, topics.to_string())


def test_unseen_sentiment_agrees_with_the_scores(unseen):
    quality = dict(unseen["con"].execute("SELECT metric, value FROM marts.voice_quality").fetchall())
    assert quality["sentiment_polar_agreement"] > 0.7, quality


def test_the_planted_phone_effect_is_inside_its_interval_and_clearly_negative(unseen):
    drivers = unseen["con"].execute("SELECT * FROM marts.satisfaction_drivers WHERE outcome = 'satisfaction' "
                                    "AND factor = 'channel'").fetchdf().set_index("level")
    assert drivers.reference_level.iloc[0] != "phone"
    phone = drivers.loc["phone"]
    assert phone.ci_low <= PHONE_EFFECT <= phone.ci_high and phone.ci_high < 0
    others = drivers.drop(index="phone")
    assert ((others.ci_low <= 0) & (others.ci_high >= 0)).mean() >= 0.75
