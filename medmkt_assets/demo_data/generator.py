"""Vectorized demo data: every contract source table, with planted structure and its truth.

Patients are generated in chunks; each chunk draws its orders, diagnoses, campaign
contacts, consents, surveys and events with numpy and is appended to the table files,
so memory stays bounded at any size. What the analytics should find (segments, bundles,
campaign uplifts, planned-campaign propensities, the incident disease's yearly risk) is
written to `<out>/_truth/`.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medmkt_assets.demo_data import sensitive as S
from medmkt_assets.demo_data import voice as V
from medmkt_assets.demo_data import world as W
from medmkt_assets.demo_data.writers import TableWriter
from medmkt_assets.lib.sources.schema import SOURCE_TABLES

SECONDS_PER_DAY = 86_400
N_CATEGORIES = len(W.CATEGORIES)
# Columns beyond the contract's: the products' Chinese names (kept in raw, shown by the insight app).
EXTRA_COLUMNS = {"products": ("name_zh",)}
CAMPAIGN_CHANNEL_FOR_CONSENT = ("sms", "email", "app_push", "call", "wechat")
NEVER = np.iinfo(np.int64).max  # onset of a patient who never gets the incident disease


def _draw_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of a (rows × options) probability matrix."""
    cumulative = np.cumsum(probabilities, axis=1)
    cumulative /= cumulative[:, -1:]
    return (rng.random((len(probabilities), 1)) > cumulative).sum(axis=1).clip(0, probabilities.shape[1] - 1)


def _seconds(value: np.datetime64) -> int:
    return int(value.astype("datetime64[s]").astype(np.int64))


def _to_ts(seconds: np.ndarray) -> np.ndarray:
    return seconds.astype("datetime64[s]")


def _to_date(seconds: np.ndarray) -> np.ndarray:
    return seconds.astype("datetime64[s]").astype("datetime64[D]")


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width))


@dataclass
class Catalog:
    """The product table plus the arrays the order sampler needs."""

    products: pd.DataFrame
    per_category: int
    popularity: np.ndarray      # (categories × per_category) cumulative draw weights
    list_price: np.ndarray      # by product index
    bundles: list[dict] = field(default_factory=list)


def _kind(name: str) -> str:
    lowered = name.lower()
    if any(w in lowered for w in ("test", "scan", "x-ray", "panel", "screening", "examination", "smear")):
        return "test"
    if any(w in lowered for w in W.DRUG_WORDS):
        return "drug"
    if any(w in lowered for w in W.DEVICE_WORDS):
        return "device"
    return "service"


def build_catalog(n_products: int, rng: np.random.Generator) -> Catalog:
    """`n_products` products spread evenly over the categories (a multiple of 10 is used), at least
    every named product of each category (the planted bundles and the incident disease's marker
    are named products)."""
    stems = max(len(stems) for _, _, stems in W.CATALOG.values())
    per_category = max(stems, math.ceil(n_products / N_CATEGORIES))
    rows = []
    for c, category in enumerate(W.CATEGORIES):
        _, median, stems = W.CATALOG[category]
        for r in range(per_category):
            stem = stems[r % len(stems)]
            variant = r // len(stems)
            name = stem if variant == 0 else f"{stem} (pack {variant + 1})"
            kind = _kind(stem)
            price = round(float(median * rng.lognormal(0, 0.45) * (1 + 0.4 * variant)), 2)
            rx_only = kind == "drug" and any(w in stem.lower() for w in ("mg", "insulin", "inhaler", "ointment"))
            description = (f"{stem}. {category.replace('_', ' ')} {kind}; "
                           f"{'prescription only' if rx_only else 'available without prescription'}.")
            name_zh = W.CATALOG_ZH[stem] if variant == 0 else f"{W.CATALOG_ZH[stem]}（规格{variant + 1}）"
            rows.append({"product_id": f"P{c * per_category + r + 1:04d}", "name": name, "name_zh": name_zh,
                         "category": category,
                         "kind": kind, "unit_price": price, "rx_only": rx_only, "description": description,
                         "_stem": stem})
    products = pd.DataFrame(rows)
    # Zipf-like popularity inside each category; bundle antecedents are popular and
    # consequents rare on their own, so a planted bundle's confidence stays readable.
    weights = 1.0 / np.arange(1, per_category + 1) ** 0.8
    weights = np.tile(weights, (N_CATEGORIES, 1))
    bundles = []
    first_of_stem = {stem: i for i, stem in reversed(list(enumerate(products["_stem"])))}
    for antecedent, consequent, probability in W.BUNDLES:
        a, b = first_of_stem[antecedent], first_of_stem[consequent]
        weights[a // per_category, a % per_category] = max(weights[a // per_category].max(), 1.0) * 1.5
        weights[b // per_category, b % per_category] *= 0.15
        bundles.append({"antecedent": products.product_id[a], "antecedent_name": antecedent,
                        "consequent": products.product_id[b], "consequent_name": consequent,
                        "probability": probability, "_a": a, "_b": b})
    treatment = first_of_stem[W.SENSITIVE_INCIDENT[2]]  # bought only after the sensitive incident's onset
    weights[treatment // per_category, treatment % per_category] = 0.0
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    return Catalog(products.drop(columns="_stem"), per_category, cumulative,
                   products.unit_price.to_numpy(), bundles)


class DemoWorld:
    """Draws one chunk of patients and everything that hangs off them."""

    def __init__(self, catalog: Catalog, rng: np.random.Generator, seed: int, order_volume: float = 1.0):
        self.catalog = catalog
        self.rng = rng
        self.seed = seed
        self.order_volume = order_volume
        self.segment_share = np.array([s[1] for s in W.SEGMENTS])
        self.category_mix = np.array([[s[3].get(c, 0.0) for c in W.CATEGORIES] for s in W.SEGMENTS])
        self.channel_mix = np.array([[s[4].get(c, 0.0) for c in W.CHANNELS] for s in W.SEGMENTS])
        self.places = [(region, city, prefix) for region, cities in W.REGIONS.items() for city, prefix in cities]
        self.place_weight = np.array([3.0 if r in ("Guangdong", "Shanghai", "Beijing") else 1.5
                                      for r, _, _ in self.places])
        self.place_weight /= self.place_weight.sum()
        self.window_start = _seconds(W.WINDOW_START)
        self.window_end = _seconds(W.WINDOW_END)
        self.bundle_of = {b["_a"]: (b["_b"], b["probability"]) for b in catalog.bundles}
        self.campaign_expected = {c[0]: [0.0, 0] for c in W.PAST_CAMPAIGNS}
        # the incident disease's marker: a named product, so every catalog holds it
        self.marker = int(np.flatnonzero(catalog.products.name.to_numpy() == W.INCIDENT[2])[0])

    # -- patients ----------------------------------------------------------------------
    def patients(self, first: int, n: int) -> dict:
        rng = self.rng
        seg = rng.choice(len(W.SEGMENTS), n, p=self.segment_share)
        age_mean = np.array([s[2][0] for s in W.SEGMENTS])[seg]
        age_sd = np.array([s[2][1] for s in W.SEGMENTS])[seg]
        age = np.clip(rng.normal(age_mean, age_sd), 18, 101).astype(int)
        female = rng.random(n) < np.array([0.55, 0.5, 0.6, 0.72, 0.55])[seg]
        snapshot = _seconds(W.SNAPSHOT)
        birth = snapshot - (age * 365.25 * SECONDS_PER_DAY).astype(np.int64) \
            - rng.integers(0, 365, n) * SECONDS_PER_DAY
        registered = np.where(rng.random(n) < 0.88,
                              rng.integers(_seconds(np.datetime64("2018-01-01")), self.window_start, n),
                              rng.integers(self.window_start, self.window_end - 60 * SECONDS_PER_DAY, n))
        conditions = rng.random((n, len(W.CONDITIONS))) < np.array([c[3] for c in W.CONDITIONS]).T[seg]
        affinity = self.category_mix[seg] * rng.gamma(6.0, 1 / 6.0, (n, N_CATEGORIES))
        for k, (_, _, category, _) in enumerate(W.CONDITIONS):
            c = W.CATEGORIES.index(category)
            affinity[:, c] = np.where(conditions[:, k], affinity[:, c] * W.CONDITION_BOOST + 0.15, affinity[:, c])
        affinity /= affinity.sum(axis=1, keepdims=True)
        activity = rng.gamma(2.0, 0.5, n)
        deceased = (seg == 1) & (rng.random(n) < 0.02)
        risk, onset, incident_rng = self.incident_onsets(first, age, female, conditions, deceased)
        return {"first": first, "n": n, "seg": seg, "age": age, "female": female, "birth": birth,
                "registered": registered, "conditions": conditions, "affinity": affinity,
                "activity": activity, "deceased": deceased, "incident_risk": risk, "onset": onset,
                "incident_rng": incident_rng, "patient_id": _ids("MRN", np.arange(first + 1, first + n + 1), 8)}

    def incident_onsets(self, first: int, age: np.ndarray, female: np.ndarray, conditions: np.ndarray,
                        deceased: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
        """True yearly risk of W.INCIDENT, onset seconds, and the generator the incident draws come from.

        That generator is the chunk's own, so every draw of self.rng, and with it every other
        planted truth, stays exactly what it was before the incident disease was added.
        """
        _, _, _, intercept, per_decade, female_weight, weights = W.INCIDENT
        weight = np.array([weights.get(c[0], 0.0) for c in W.CONDITIONS])
        logit = intercept + per_decade * (age - 60) / 10 + female_weight * female + conditions @ weight
        risk = 1 / (1 + np.exp(-logit))
        rng = np.random.default_rng([self.seed, first, 7919])
        years = rng.exponential(1 / -np.log1p(-risk))  # yearly hazard -ln(1-r): P(onset within a year) = r
        onset = _seconds(W.INCIDENT_SINCE) + (years * 365 * SECONDS_PER_DAY).astype(np.int64)
        onset[deceased & (onset > self.window_end)] = NEVER
        return risk, onset, rng

    def patient_rows(self, p: dict) -> pd.DataFrame:
        rng, n = self.rng, p["n"]
        place = rng.choice(len(self.places), n, p=self.place_weight)
        region = np.array([x[0] for x in self.places])[place]
        city = np.array([x[1] for x in self.places])[place]
        prefix = np.array([x[2] for x in self.places])[place]
        style = rng.random(n)
        gender = np.where(p["female"], "F", "M").astype(object)
        gender[style > 0.80] = np.where(p["female"], "female", "male")[style > 0.80]
        gender[style > 0.93] = np.where(p["female"], "女", "男")[style > 0.93]
        gender[style > 0.995] = "U"
        surname = np.array(W.SURNAMES)[rng.integers(0, len(W.SURNAMES), n)]
        given = np.char.add(np.array(W.GIVEN)[rng.integers(0, len(W.GIVEN), n)],
                            np.where(rng.random(n) < 0.6, np.array(W.GIVEN)[rng.integers(0, len(W.GIVEN), n)], ""))
        number = np.arange(p["first"] + 1, p["first"] + n + 1)
        patient_id = p["patient_id"].astype(object)
        padded = rng.random(n) < 0.005  # exports pad ids now and then; staging trims them
        patient_id[padded] = np.char.add(" ", p["patient_id"][padded].astype(str))
        street = np.array(W.STREETS)[rng.integers(0, len(W.STREETS), n)]
        insurance = np.array(["commercial", "public", "self_pay"])[
            _draw_rows(np.array([[.35, .55, .10], [.15, .80, .05], [.35, .55, .10], [.75, .20, .05],
                                 [.35, .50, .15]])[p["seg"]], rng)]
        death = np.where(p["deceased"], _to_date(np.full(n, self.window_end - 30 * SECONDS_PER_DAY)).astype(str), None)
        return pd.DataFrame({
            "patient_id": patient_id, "full_name": np.char.add(surname, given), "gender": gender,
            "birth_date": _to_date(p["birth"]).astype(str),
            "phone": np.char.add("+86 13", np.char.zfill((number * 7919 % 1_000_000_000).astype(str), 9)),
            "email": np.char.add(np.char.add("patient", number.astype(str)), "@example.com"),
            "address": np.char.add(np.char.add(city, street), np.char.add(rng.integers(1, 400, n).astype(str), "号")),
            "city": city, "region": region,
            "postal_code": np.char.add(prefix, np.char.zfill(rng.integers(0, 1000, n).astype(str), 3)),
            "insurance_type": insurance, "registered_at": _to_date(p["registered"]).astype(str),
            "death_date": death,
        })

    # -- orders ------------------------------------------------------------------------
    def orders(self, p: dict, first_order: int) -> pd.DataFrame:
        rng, cat = self.rng, self.catalog
        mean_orders = np.array([s[5] for s in W.SEGMENTS])[p["seg"]] * p["activity"] * self.order_volume
        n_orders = rng.poisson(mean_orders)
        n_orders[rng.random(p["n"]) < 0.03] = 0  # registered, nothing bought yet
        owner = np.repeat(np.arange(p["n"]), n_orders)
        n = len(owner)
        start = np.maximum(p["registered"][owner], self.window_start)
        # more orders later in the window: demand grows
        at = start + (rng.random(n) ** 0.8 * (self.window_end - start)).astype(np.int64)
        channel = _draw_rows(self.channel_mix[p["seg"][owner]], rng)
        lines_per_order = 1 + rng.poisson(0.5, n)
        line_order = np.repeat(np.arange(n), lines_per_order)
        category = _draw_rows(p["affinity"][owner[line_order]], rng)
        rank = (rng.random((len(line_order), 1)) > cat.popularity[category]).sum(axis=1)
        product = category * cat.per_category + np.minimum(rank, cat.per_category - 1)
        # planted bundles: B joins an order holding A with the planted probability
        extra_order, extra_product = [], []
        for a, (b, probability) in self.bundle_of.items():
            hit = line_order[(product == a) & (rng.random(len(product)) < probability)]
            extra_order.append(hit)
            extra_product.append(np.full(len(hit), b))
        line_order = np.concatenate([line_order, *extra_order])
        product = np.concatenate([product, *extra_product])
        lines = pd.DataFrame({"o": line_order, "p": product}).drop_duplicates().sort_values(["o", "p"])
        o = lines.o.to_numpy()
        pr = lines.p.to_numpy()
        line_no = lines.groupby("o").cumcount().to_numpy() + 1
        price_mult = np.array([s[6] for s in W.SEGMENTS])[p["seg"][owner[o]]]
        quantity = 1 + rng.poisson(0.35 * price_mult)
        discount = np.where(price_mult > 1.5, 1.0, rng.choice([1.0, 0.9, 0.8], len(o), p=[.7, .2, .1]))
        facility = np.char.add("FAC", np.char.zfill(rng.integers(1, 40, n).astype(str), 3))
        # the planted leak, drawn after every self.rng draw: orders placed after onset gain the
        # marker product (unless they hold it already) as their last line
        irng = p["incident_rng"]
        holds = np.zeros(n, bool)
        holds[o[pr == self.marker]] = True
        leak = np.flatnonzero((at > p["onset"][owner]) & ~holds & (irng.random(n) < W.INCIDENT_LEAK))
        leak_mult = np.array([s[6] for s in W.SEGMENTS])[p["seg"][owner[leak]]]
        added = (leak, np.full(len(leak), self.marker), np.bincount(o, minlength=n)[leak] + 1,
                 1 + irng.poisson(0.35 * leak_mult),
                 np.where(leak_mult > 1.5, 1.0, irng.choice([1.0, 0.9, 0.8], len(leak), p=[.7, .2, .1])))
        merged = np.argsort(np.concatenate([o, leak]), kind="stable")  # each order's own lines first
        o, pr, line_no, quantity, discount = (np.concatenate([old, new])[merged] for old, new
                                              in zip((o, pr, line_no, quantity, discount), added))
        return pd.DataFrame({
            "order_id": _ids("O", first_order + o + 1, 9), "line_no": line_no,
            "patient_id": p["patient_id"][owner[o]], "product_id": cat.products.product_id.to_numpy()[pr],
            "ordered_at": _to_ts(at[o]), "quantity": quantity,
            "unit_price": np.round(cat.list_price[pr] * discount, 2),
            "channel": np.array(W.CHANNELS)[channel[o]], "facility_id": facility[o],
            "_owner": owner[o], "_order": o,
        })

    # -- the rest ----------------------------------------------------------------------
    def diagnoses(self, p: dict) -> pd.DataFrame:
        who, which = np.nonzero(p["conditions"])
        at = self.rng.integers(_seconds(np.datetime64("2012-01-01")), self.window_end, len(who))
        ill = np.flatnonzero(p["onset"] <= self.window_end)  # incident cases, diagnosed at onset
        return pd.concat([pd.DataFrame({
            "patient_id": p["patient_id"][who], "condition_code": np.array([c[0] for c in W.CONDITIONS])[which],
            "condition_name": np.array([c[1] for c in W.CONDITIONS])[which], "diagnosed_at": _to_date(at).astype(str),
        }), pd.DataFrame({
            "patient_id": p["patient_id"][ill], "condition_code": W.INCIDENT[0], "condition_name": W.INCIDENT[1],
            "diagnosed_at": _to_date(p["onset"][ill]).astype(str),
        })], ignore_index=True)

    def consents(self, p: dict) -> pd.DataFrame:
        rng, n = self.rng, p["n"]
        granted = rng.random(n) < 0.62
        who = np.nonzero(granted)[0]
        channel = np.where(rng.random(len(who)) < 0.5, "all",
                           np.array(CAMPAIGN_CHANNEL_FOR_CONSENT)[rng.integers(0, 5, len(who))])
        first = rng.integers(_seconds(np.datetime64("2020-01-01")), self.window_end, len(who))
        revoked = rng.random(len(who)) < 0.08
        regranted = revoked & (rng.random(len(who)) < 0.25)
        revoked_at = np.minimum(first + rng.integers(1, 400, len(who)) * SECONDS_PER_DAY, self.window_end - 2)
        regranted_at = np.minimum(revoked_at + rng.integers(1, 200, len(who)) * SECONDS_PER_DAY, self.window_end - 1)
        education = rng.random(n) < 0.3
        frames = [
            pd.DataFrame({"i": who, "purpose": "marketing", "channel": channel, "status": "granted", "at": first}),
            pd.DataFrame({"i": who[revoked], "purpose": "marketing", "channel": channel[revoked],
                          "status": "revoked", "at": revoked_at[revoked]}),
            pd.DataFrame({"i": who[regranted], "purpose": "marketing", "channel": channel[regranted],
                          "status": "granted", "at": regranted_at[regranted]}),
            pd.DataFrame({"i": np.nonzero(education)[0], "purpose": "health_education", "channel": "all",
                          "status": "granted",
                          "at": rng.integers(_seconds(np.datetime64("2020-01-01")), self.window_end,
                                             int(education.sum()))}),
        ]
        rows = pd.concat(frames, ignore_index=True)
        return pd.DataFrame({"patient_id": p["patient_id"][rows.i], "purpose": rows.purpose,
                             "channel": rows.channel, "status": rows.status, "recorded_at": _to_ts(rows["at"].to_numpy())})

    def skip_survey_draws(self, p: dict, has_orders: np.ndarray) -> None:
        """Draw from self.rng what the survey table drew before it moved to demo_data/voice.py (which
        has its own generator), so every table drawn after it is the same world as before."""
        rng = self.rng
        n = int((has_orders & (rng.random(p["n"]) < 0.15)).sum())
        rng.normal(0, 0.8, n), rng.normal(0, 1.2, n), rng.integers(0, 60, n), rng.random(n)
        rng.integers(self.window_start, self.window_end, n)

    def events(self, p: dict) -> pd.DataFrame:
        rng, cat = self.rng, self.catalog
        per_patient = rng.poisson(np.array([s[7] for s in W.SEGMENTS])[p["seg"]] * p["activity"])
        owner = np.repeat(np.arange(p["n"]), per_patient)
        anonymous = rng.random(len(owner)) < 0.05
        category = _draw_rows(p["affinity"][owner], rng)
        kind = rng.choice(np.array(["page_view", "search", "click", "share"]), len(owner), p=[.55, .2, .2, .05])
        product = category * cat.per_category + rng.integers(0, cat.per_category, len(owner))
        product_id = np.where(np.isin(kind, ["page_view", "click"]), cat.products.product_id.to_numpy()[product], None)
        queries = np.array([W.QUERIES[c][i % 3] for c, i in
                            zip(np.array(W.CATEGORIES)[category], rng.integers(0, 3, len(owner)))], dtype=object)
        patient_id = p["patient_id"][owner].astype(object)
        patient_id[anonymous] = None
        return pd.DataFrame({
            "patient_id": patient_id,
            "occurred_at": _to_ts(rng.integers(self.window_start, self.window_end, len(owner))),
            "event_type": kind, "source": rng.choice(np.array(["web", "app", "search", "social"]), len(owner),
                                                     p=[.4, .4, .15, .05]),
            "product_id": product_id, "category": np.array(W.CATEGORIES)[category],
            "query": np.where(kind == "search", queries, None),
        })

    def response_probability(self, p: dict, category: str) -> np.ndarray:
        """Chance of converting without contact: driven by observable affinity and activity."""
        c = W.CATEGORIES.index(category)
        return np.clip(0.01 + 0.3 * p["affinity"][:, c] * np.minimum(p["activity"], 2.0), 0, 0.6)

    def contacts(self, p: dict) -> pd.DataFrame:
        rng, frames = self.rng, []
        alive = ~p["deceased"]
        for cid, _, _, _, category, start, end, _, uplift in W.PAST_CAMPAIGNS:
            start_s, end_s = _seconds(np.datetime64(start)), _seconds(np.datetime64(end))
            c = W.CATEGORIES.index(category)
            eligible = alive & (p["registered"] < start_s)
            chosen = np.nonzero(eligible & (rng.random(p["n"]) < np.clip(0.04 + 1.5 * p["affinity"][:, c], 0, 0.6)))[0]
            treated = rng.random(len(chosen)) < 0.7
            base = self.response_probability(p, category)[chosen]
            prob = np.clip(base + uplift * treated, 0, 1)
            expected = self.campaign_expected[cid]
            expected[0] += float(np.clip(base + uplift, 0, 1).sum() - base.sum())
            expected[1] += len(chosen)
            converted = rng.random(len(chosen)) < prob
            contacted = start_s + rng.integers(0, 3 * SECONDS_PER_DAY, len(chosen))
            opened = treated & (rng.random(len(chosen)) < 0.45 + 0.3 * converted)
            clicked = opened & (rng.random(len(chosen)) < 0.35 + 0.4 * converted)
            converted_at = start_s + (rng.random(len(chosen)) * (end_s - start_s)).astype(np.int64)
            price = self.catalog.list_price[c * self.catalog.per_category:(c + 1) * self.catalog.per_category]
            revenue = np.where(converted, np.round(rng.choice(price, len(chosen)) * (1 + rng.poisson(0.5, len(chosen))), 2),
                               0.0)
            frames.append(pd.DataFrame({
                "campaign_id": cid, "patient_id": p["patient_id"][chosen],
                "arm": np.where(treated, "treatment", "control"),
                "contacted_at": np.where(treated, _to_ts(contacted).astype(str), None),
                "opened": opened, "clicked": clicked, "converted": converted,
                "converted_at": np.where(converted, _to_ts(converted_at).astype(str), None),
                "revenue": revenue,
            }))
        return pd.concat(frames, ignore_index=True)

    def planned_truth(self, p: dict) -> pd.DataFrame:
        frames = []
        for cid, _, _, _, category, _, _, _, uplift in W.PLANNED_CAMPAIGNS:
            prob = np.clip(self.response_probability(p, category) + uplift, 0, 1)
            frames.append(pd.DataFrame({"patient_id": p["patient_id"], "campaign_id": cid,
                                        "probability": np.round(prob, 5)}))
        return pd.concat(frames, ignore_index=True)

    def incident_truth(self, p: dict) -> pd.DataFrame:
        """Living patients still without W.INCIDENT at WINDOW_END: the population the disease-risk model scores."""
        at_risk = ~p["deceased"] & (p["onset"] > self.window_end)
        onset = p["onset"][at_risk]
        return pd.DataFrame({"patient_id": p["patient_id"][at_risk], "condition_code": W.INCIDENT[0],
                             "yearly_risk": np.round(p["incident_risk"][at_risk], 6),
                             "diagnosed_next_year": (onset <= self.window_end + 365 * SECONDS_PER_DAY).astype(int)})


def campaign_rows() -> pd.DataFrame:
    return pd.DataFrame([
        {"campaign_id": c[0], "name": c[1], "purpose": c[2], "channel": c[3], "target_category": c[4],
         "start_date": c[5], "end_date": c[6], "cost_per_contact": c[7]}
        for c in (*W.PAST_CAMPAIGNS, *W.PLANNED_CAMPAIGNS, W.CARE_CAMPAIGN)
    ])


def bad_rows(n_patients: int) -> dict[str, list[dict]]:
    """A handful of deliberately broken rows, appended after the good ones (and their truth)."""
    bad = f"MRN{n_patients + 1:08d}"
    return {
        "patients": [
            {"patient_id": "MRN00000001", "full_name": "重复 记录", "gender": "F", "birth_date": "1980-01-01",
             "region": "Beijing", "city": "Beijing", "_why": "duplicate patient_id"},
            {"patient_id": "", "full_name": "No Id", "gender": "M", "birth_date": "1970-01-01",
             "_why": "patient_id is missing"},
            {"patient_id": bad, "full_name": "Bad Date", "gender": "M", "birth_date": "1985-13-40",
             "_why": "birth_date is not a valid date"},
        ],
        "products": [
            {"product_id": "PBAD1", "name": "Broken price", "category": "checkup", "kind": "service",
             "unit_price": "-12.5", "_why": "unit_price is negative"},
        ],
        "orders": [
            {"order_id": "OBAD1", "line_no": "1", "patient_id": "MRN99999999", "product_id": "P0001",
             "ordered_at": "2025-05-05 10:00:00", "quantity": "1", "unit_price": "10", "channel": "store",
             "_why": "unknown patient_id"},
            {"order_id": "OBAD2", "line_no": "1", "patient_id": "MRN00000002", "product_id": "NOPE",
             "ordered_at": "2025-05-05 10:00:00", "quantity": "1", "unit_price": "10", "channel": "store",
             "_why": "unknown product_id"},
            {"order_id": "OBAD3", "line_no": "1", "patient_id": "MRN00000002", "product_id": "P0001",
             "ordered_at": "not-a-date", "quantity": "1", "unit_price": "10", "channel": "store",
             "_why": "ordered_at is not a valid timestamp"},
            {"order_id": "OBAD4", "line_no": "1", "patient_id": "MRN00000002", "product_id": "P0001",
             "ordered_at": "2025-05-05 10:00:00", "quantity": "-2", "unit_price": "10", "channel": "store",
             "_why": "quantity is negative"},
        ],
        "consents": [
            {"patient_id": "MRN00000003", "purpose": "marketing", "channel": "all", "status": "maybe",
             "recorded_at": "2025-01-01 00:00:00", "_why": "status not granted/revoked"},
        ],
        "campaign_contacts": [
            {"campaign_id": "C001", "patient_id": "MRN00000004", "arm": "unknown", "_why": "arm not treatment/control"},
        ],
        "surveys": [
            {"patient_id": "MRN00000005", "responded_at": "2025-03-03 12:00:00", "satisfaction": "9", "nps": "5",
             "_why": "satisfaction outside 1-5"},
        ],
    }


def generate(out_dir: str | Path, patients: int = 20_000, seed: int = 42, products: int = 120,
             fmt: str = "csv", chunk_size: int = 50_000, with_bad_rows: bool = True,
             order_volume: float = 1.0) -> dict:
    """Write every source table (and `_truth/`) into out_dir; returns the manifest.

    order_volume scales each patient's expected number of orders (1.0: about 14.0 order
    lines per patient, 1.4 of them the incident disease's marker; 1.43: about 20).
    """
    if patients < 1:
        raise ValueError("patients must be at least 1")
    if order_volume <= 0:
        raise ValueError("order_volume must be positive")
    began = time.perf_counter()
    out = Path(out_dir)
    truth_dir = out / "_truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    catalog = build_catalog(products, rng)
    world = DemoWorld(catalog, rng, seed, order_volume)
    writers = {name: TableWriter(out, name, spec.columns + EXTRA_COLUMNS.get(name, ()), fmt)
               for name, spec in SOURCE_TABLES.items()}
    truth_segments = TableWriter(truth_dir, "patient_segments", ("patient_id", "segment_id", "segment"), "csv")
    truth_planned = TableWriter(truth_dir, "planned_propensity", ("patient_id", "campaign_id", "probability"), "csv")
    truth_incident = TableWriter(truth_dir, "incident_risk",
                                 ("patient_id", "condition_code", "yearly_risk", "diagnosed_next_year"), "csv")
    truth_sensitive = TableWriter(truth_dir, "sensitive_patients",
                                  ("patient_id", "condition_code", "onset", "care_consent"), "csv")
    truth_comments = TableWriter(truth_dir, "voice_comments", V.TRUTH_COMMENT_COLUMNS, "csv")
    truth_identifiers = TableWriter(truth_dir, "voice_identifiers", ("patient_id", "kind", "value", "where"), "csv")
    categories = dict(zip(catalog.products.product_id, catalog.products.category))
    treatment = int(np.flatnonzero(catalog.products.name.to_numpy() == W.SENSITIVE_INCIDENT[2])[0])
    writers["products"].write(catalog.products)
    writers["campaigns"].write(campaign_rows())
    next_order = 0
    for first in range(0, patients, chunk_size):
        p = world.patients(first, min(chunk_size, patients - first))
        patient_rows = world.patient_rows(p)
        writers["patients"].write(patient_rows)
        orders = world.orders(p, next_order)
        next_order += int(orders["_order"].max()) + 1 if len(orders) else 0
        writers["orders"].write(orders.drop(columns=["_owner", "_order"]))
        onset = S.onsets(seed, first, p["age"], p["female"], p["conditions"], p["deceased"], world.window_end)
        writers["orders"].write(S.treatment_orders(seed, first, p["patient_id"], onset, world.window_end,
                                                   catalog.products.product_id[treatment],
                                                   float(catalog.list_price[treatment])))
        has_orders = np.zeros(p["n"], bool)
        has_orders[orders["_owner"].to_numpy()] = True
        writers["diagnoses"].write(world.diagnoses(p))
        writers["diagnoses"].write(S.diagnoses(p["patient_id"], onset))
        care = S.care_consents(seed, first, p["patient_id"], onset, world.window_end)
        writers["consents"].write(world.consents(p))
        writers["consents"].write(care)
        truth_sensitive.write(S.truth(p["patient_id"], onset, care))
        world.skip_survey_draws(p, has_orders)
        events, in_queries = V.plant_in_queries(seed, first, world.events(p), patient_rows)
        writers["events"].write(events)
        contacts = world.contacts(p)
        writers["campaign_contacts"].write(contacts)
        voice = V.surveys(seed, first, p, patient_rows, orders, contacts, categories,
                          (world.window_start, world.window_end))
        writers["surveys"].write(voice["surveys"])
        truth_comments.write(voice["comments"])
        truth_identifiers.write(pd.concat([voice["identifiers"], in_queries], ignore_index=True))
        truth_segments.write(pd.DataFrame({"patient_id": p["patient_id"], "segment_id": p["seg"],
                                           "segment": np.array([s[0] for s in W.SEGMENTS])[p["seg"]]}))
        planned = world.planned_truth(p)
        truth_planned.write(planned[np.tile(~p["deceased"], len(W.PLANNED_CAMPAIGNS))])
        truth_incident.write(world.incident_truth(p))
    planted = bad_rows(patients) if with_bad_rows else {}
    for table, rows in planted.items():
        writers[table].write(pd.DataFrame([{k: v for k, v in r.items() if k != "_why"} for r in rows]))
    for writer in (*writers.values(), truth_segments, truth_planned, truth_incident, truth_sensitive,
                   truth_comments, truth_identifiers):
        writer.close()

    campaigns = [{"campaign_id": c[0], "purpose": c[2], "channel": c[3], "target_category": c[4],
                  "planted_uplift": c[8], "expected_uplift": round(world.campaign_expected[c[0]][0]
                                                                    / max(world.campaign_expected[c[0]][1], 1), 6),
                  "assigned": world.campaign_expected[c[0]][1]} for c in W.PAST_CAMPAIGNS]
    planned = [{"campaign_id": c[0], "target_category": c[4], "channel": c[3], "purpose": c[2]}
               for c in W.PLANNED_CAMPAIGNS]
    bundles = [{k: v for k, v in b.items() if not k.startswith("_")} for b in catalog.bundles]
    manifest = {
        "seed": seed, "patients": patients, "products": len(catalog.products), "format": fmt,
        "rows": {name: w.rows for name, w in writers.items()},
        "bad_rows": {t: len(r) for t, r in planted.items()},
        "segments": [s[0] for s in W.SEGMENTS], "seconds": round(time.perf_counter() - began, 2),
    }
    (truth_dir / "campaigns.json").write_text(json.dumps({"past": campaigns, "planned": planned}, indent=2))
    code, name, _, intercept, per_decade, female, weights = W.INCIDENT
    incident = {"condition_code": code, "condition_name": name,
                "marker_product": catalog.products.product_id[world.marker],
                "marker_name": catalog.products.name[world.marker], "leak_probability": W.INCIDENT_LEAK,
                "onsets_since": str(W.INCIDENT_SINCE),
                "yearly_risk_logit": {"intercept": intercept, "age_minus_60_per_decade": per_decade,
                                      "female": female, "conditions": weights}}
    (truth_dir / "incident.json").write_text(json.dumps(incident, indent=2))
    code, name, _, intercept, per_decade, female, weights = W.SENSITIVE_INCIDENT
    (truth_dir / "sensitive.json").write_text(json.dumps({
        "condition_code": code, "condition_name": name, "family": "substance_use",
        "treatment_product": catalog.products.product_id[treatment],
        "treatment_name": catalog.products.name[treatment], "monthly_refill": W.SENSITIVE_REFILL,
        "onsets_since": str(W.SENSITIVE_SINCE), "care_campaign": W.CARE_CAMPAIGN[0],
        "care_purpose": W.CARE_CAMPAIGN[2], "care_consent_share": W.SENSITIVE_CONSENT,
        "yearly_risk_logit": {"intercept": intercept, "age_minus_60_per_decade": per_decade,
                              "female": female, "conditions": weights},
        "other_sensitive_products": [n for n in catalog.products.name
                                     if n in ("Pregnancy test", "Contraceptive pill", "Prenatal vitamins",
                                              "Fertility consultation")],
        "other_sensitive_conditions": ["F32"],
    }, indent=2, ensure_ascii=False))
    (truth_dir / "voice.json").write_text(json.dumps(V.planted_truth(), indent=2, ensure_ascii=False))
    (truth_dir / "bundles.json").write_text(json.dumps(bundles, indent=2, ensure_ascii=False))
    (truth_dir / "bad_rows.json").write_text(json.dumps(planted, indent=2, ensure_ascii=False))
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest

