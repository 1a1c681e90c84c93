"""The demo world's patient voice: survey responses with planted drivers, topics and identifiers.

Each respondent answers about a visit: their latest order at or before the response. The
expected satisfaction is exactly linear in what the pipeline can see about that visit,

    E[satisfaction] = SEGMENT_BASE[segment] + CHANNEL[channel] + CATEGORY[category]
                      + FACILITY[facility] + CAMPAIGN[a treatment contact in the 60 days before]

and the score is drawn around it without bias (half of the respondents SPREAD above it, half
below, each rounded up or down by its fraction, so the mean is exact); NPS likewise with E[nps] = 2·E[satisfaction]. A regression on those factors should
recover the planted effects with intervals that cover them.

Comments (three in four responses) talk about one or two planted TOPICS, in Chinese or English,
in words whose tone follows the score; `delivery` grows over the window (a planted trend). Some
comments carry planted identifiers (the author's own name, phone, e-mail, address, a resident
ID, an insurance number, a birth date, a staff name) and some speak of a sensitive condition;
both are written to `_truth/` so tests can prove that none reaches the analytics.

Everything here draws from its own generator (seeded by the world's seed and the chunk), so the
rest of the world is the same with or without it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from medmkt_assets.demo_data import world as W

SECONDS_PER_DAY = 86_400
RESPONSE_RATE = 0.35      # of patients with orders
COMMENT_RATE = 0.75
ENGLISH_RATE = 0.3
IDENTIFIER_RATE = 0.08    # comments carrying a planted identifier
SENSITIVE_RATE = 0.01     # comments speaking of a sensitive condition
CAMPAIGN_WINDOW_DAYS = 60

# planted effects on the expected satisfaction (1-5); reference levels have 0
SEGMENT_BASE = (3.9, 3.4, 3.7, 4.1, 3.2)            # W.SEGMENTS order
CHANNEL = {"store": 0.0, "online": -0.1, "app": 0.2, "phone": -0.3, "clinic": 0.1}
CATEGORY = {"pediatrics": -0.2, "wellbeing": 0.15}  # every other category 0
FACILITY = {"FAC007": -0.6, "FAC013": 0.3}           # every other facility 0
CAMPAIGN = {"C005": 0.25, "C003": -0.2}               # no recent treatment contact: 0
SPREAD = 0.6
NPS_SLOPE, NPS_INTERCEPT = 2.0, 0.0   # E[satisfaction] spans 1.9-5.0, so 3.8-10

# topic -> (weight, lean, zh negative, zh positive, en negative, en positive); lean > 0: written
# more by satisfied patients, < 0: by unsatisfied ones
TOPICS = {
    "waiting_time": (1.0, -1, ("等待时间太长", "排队排了两个小时", "候诊太久了", "挂号后等了很久才看上", "排队的人太多，等待很久"),
                     ("基本不用排队", "等待时间很短", "候诊很快，不用久等"),
                     ("the waiting time was far too long", "we waited two hours in the queue", "the queue was endless and slow"),
                     ("hardly any waiting time", "the queue moved quickly, short wait")),
    "staff_attitude": (1.0, 1, ("护士态度冷淡", "前台服务态度很差", "工作人员态度不耐烦"),
                       ("护士很耐心", "服务态度很好", "前台工作人员很热情", "护士非常细心体贴"),
                       ("the nurses were rude and cold", "reception staff had a poor attitude"),
                       ("the nurses were kind and patient", "friendly reception staff", "staff were warm and caring")),
    "price": (0.9, -1, ("价格偏贵", "检查费用太高", "药价比别家贵很多", "收费太贵了"),
              ("价格实惠", "费用合理，性价比高"),
              ("prices are too expensive", "the fees were far too high", "more expensive than other pharmacies"),
              ("fair prices, good value", "reasonable fees and good value")),
    "booking": (0.8, -1, ("预约系统不好用", "线上挂号总是失败", "预约电话一直打不通"),
                ("预约挂号很方便", "线上预约很顺利"),
                ("the booking system kept failing", "could not get an appointment online"),
                ("booking an appointment online was easy", "the appointment booking was simple")),
    "delivery": (0.7, 1, ("送药太慢了", "快递包装破损", "配送延迟了三天"),
                 ("送药很快", "快递包装很好", "配送非常及时"),
                 ("the delivery was late and the parcel damaged", "delivery took three days too long"),
                 ("fast delivery, well packed parcel", "the delivery arrived quickly")),
    "doctor_expertise": (1.0, 1, ("医生讲解不清楚", "医生看病很匆忙，没说几句"),
                         ("医生很专业", "医生讲解很清楚", "医生非常耐心细致，诊断专业"),
                         ("the doctor rushed and explained nothing", "the doctor did not explain the diagnosis"),
                         ("the doctor was professional and explained everything", "a very knowledgeable doctor")),
    "environment": (0.6, 0, ("环境嘈杂", "卫生间不干净", "停车位太难找"),
                    ("环境干净整洁", "停车很方便", "候诊区干净舒适"),
                    ("the waiting room was dirty and noisy", "parking was impossible"),
                    ("clean and comfortable clinic", "easy parking and a clean building")),
}
# the words that say which topic a comment is about (a recovered topic's top terms hold some of them)
KEY_TERMS = {
    "waiting_time": ("等待", "排队", "候诊", "waiting", "queue", "wait"),
    "staff_attitude": ("护士", "态度", "前台", "热情", "nurses", "staff", "reception"),
    "price": ("价格", "费用", "收费", "药价", "prices", "fees", "expensive"),
    "booking": ("预约", "挂号", "预约系统", "booking", "appointment"),
    "delivery": ("送药", "快递", "配送", "包装", "delivery", "parcel"),
    "doctor_expertise": ("医生", "专业", "讲解", "doctor", "explained"),
    "environment": ("环境", "卫生间", "停车", "干净", "parking", "clean"),
}
# the planted trend: delivery's weight grows from 1x to DELIVERY_GROWTH x over the window
DELIVERY_GROWTH = 4.0
OPENERS_ZH = ("", "", "总体来说，", "这次就诊，", "说实话，")
CLOSERS_ZH = ("", "", "。", "，下次还会再来。", "，希望改进。")
OPENERS_EN = ("", "", "Overall, ", "On this visit, ", "Honestly, ")
CLOSERS_EN = ("", ".", ".", ", will come back.", ", please improve.")
# staff named in comments: (how the comment names them, the name itself)
STAFF_ZH = (("张明医生", "张明"), ("李娜护士", "李娜"), ("王芳大夫", "王芳"), ("刘洋主任", "刘洋"), ("陈静医生", "陈静"))
STAFF_EN = (("Dr. Smith", "Smith"), ("Nurse Johnson", "Johnson"), ("Dr. Emily Clark", "Emily Clark"),
            ("Mr. Brown", "Brown"))
# comments that speak of a sensitive condition (the sensitive-data policy's names must match them)
SENSITIVE_COMMENTS = (("mental_health", "我的抑郁症复诊等待太久"), ("hiv_sti", "拿HIV的药时护士很耐心"),
                      ("mental_health", "the depression clinic staff were kind"),
                      ("substance_use", "美沙酮门诊排队太久"))


def _identifier(kind: str, row: pd.Series, rng: np.random.Generator, english: bool) -> tuple[str, str]:
    """(the text that carries it, the identifier itself)."""
    phone = row.phone.replace("+86 ", "")
    if kind == "name":
        return (f"My name is {row.full_name}" if english else f"我是{row.full_name}"), row.full_name
    if kind == "phone":
        spaced = f"{phone[:3]} {phone[3:7]} {phone[7:]}"
        return (f"call me at {spaced}" if english else f"请回电{spaced}"), phone
    if kind == "email":
        return (f"email me at {row.email}" if english else f"邮箱{row.email}"), row.email
    if kind == "address":
        return (f"I live at {row.address}" if english else f"我住在{row.address}"), row.address
    if kind == "id_number":
        number = _resident_id(row.birth_date, rng)
        return (f"my ID is {number}" if english else f"身份证号{number}"), number
    if kind == "insurance_number":
        number = "YB" + "".join(map(str, rng.integers(0, 10, 10)))
        return (f"policy number {number}" if english else f"医保卡号{number}"), number
    if kind == "birth_date":
        return (f"born {row.birth_date}" if english else f"出生日期{row.birth_date}"), row.birth_date
    staff = STAFF_EN if english else STAFF_ZH
    named, name = staff[rng.integers(len(staff))]
    return (f"thanks to {named}" if english else f"感谢{named}"), name


def _resident_id(birth_date: str, rng: np.random.Generator) -> str:
    """An 18-character Chinese resident ID with a valid check character (GB 11643)."""
    body = "440106" + birth_date.replace("-", "") + "".join(map(str, rng.integers(0, 10, 3)))
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


TRUTH_COMMENT_COLUMNS = ("patient_id", "responded_at", "segment_id", "channel", "facility_id", "category",
                         "campaign_id", "expected_satisfaction", "language", "tone", "topics")
IDENTIFIER_KINDS = ("name", "phone", "email", "address", "id_number", "insurance_number", "birth_date", "staff_name")


def _comment(topics: list[str], positive: bool, english: bool, rng: np.random.Generator) -> str:
    parts = []
    for topic in topics:
        _, _, zh_neg, zh_pos, en_neg, en_pos = TOPICS[topic]
        phrases = (en_pos if positive else en_neg) if english else (zh_pos if positive else zh_neg)
        parts.append(phrases[rng.integers(len(phrases))])
    if english:
        body = ", and ".join(parts)
        return OPENERS_EN[rng.integers(len(OPENERS_EN))] + body + CLOSERS_EN[rng.integers(len(CLOSERS_EN))]
    return OPENERS_ZH[rng.integers(len(OPENERS_ZH))] + "，".join(parts) + CLOSERS_ZH[rng.integers(len(CLOSERS_ZH))]


def surveys(seed: int, first: int, p: dict, patients: pd.DataFrame, orders: pd.DataFrame,
            contacts: pd.DataFrame, categories: dict[str, str], window: tuple[int, int]) -> dict[str, pd.DataFrame]:
    """The surveys table of one chunk of patients, and its truth (comments, identifiers)."""
    rng = np.random.default_rng([seed, first, 31])
    start, end = window
    visits = orders[orders.line_no == 1][["_owner", "ordered_at", "channel", "facility_id", "product_id"]]
    visits = visits.assign(seconds=visits.ordered_at.astype("datetime64[s]").astype(np.int64)).sort_values(["_owner", "seconds"])
    owners = visits._owner.unique()
    who = owners[rng.random(len(owners)) < RESPONSE_RATE]
    if not len(who):
        return {"surveys": pd.DataFrame(columns=["patient_id", "responded_at", "satisfaction", "nps", "comment"]),
                "comments": pd.DataFrame(columns=list(TRUTH_COMMENT_COLUMNS)), "identifiers": pd.DataFrame()}
    # the response comes 0-10 days after one of the respondent's orders; its visit is the latest
    # order at or before it (which may be a later one than the order drawn)
    mine = visits[visits._owner.isin(who)]
    drawn = mine.groupby("_owner").sample(n=1, random_state=int(rng.integers(2**31)))
    responded = np.minimum(drawn.seconds.to_numpy() + rng.integers(3600, 10 * SECONDS_PER_DAY, len(drawn)), end - 1)
    asked = pd.DataFrame({"_owner": drawn._owner.to_numpy(), "responded": responded}).sort_values("responded")
    visit = pd.merge_asof(asked, mine.sort_values("seconds"), left_on="responded", right_on="seconds", by="_owner",
                          direction="backward")
    owner = visit._owner.to_numpy()
    patient_id = p["patient_id"][owner]
    contacted = _recent_treatment(contacts, patient_id, visit.responded.to_numpy())
    mean = (np.array(SEGMENT_BASE)[p["seg"][owner]] + visit.channel.map(CHANNEL).fillna(0).to_numpy()
            + visit.product_id.map(categories).map(CATEGORY).fillna(0).to_numpy()
            + visit.facility_id.map(FACILITY).fillna(0).to_numpy() + pd.Series(contacted).map(CAMPAIGN).fillna(0).to_numpy())
    # spread without bias: half the respondents sit SPREAD above the mean, half below (less near
    # the ends of the scale), then each rounds up or down by its fraction
    spread = np.minimum.reduce([np.full(len(mean), SPREAD), mean - 1, 5 - mean])
    latent = mean + np.where(rng.random(len(mean)) < 0.5, spread, -spread)
    satisfaction = _around(latent, rng)
    nps = _around(NPS_SLOPE * latent + NPS_INTERCEPT, rng)

    n = len(owner)
    has_comment = rng.random(n) < COMMENT_RATE
    english = rng.random(n) < ENGLISH_RATE
    months = (visit.responded.to_numpy() - start) / max(end - start, 1)
    # the tone of the words follows the score, not always: a 3 is written either way
    positive = rng.random(n) < np.array([0.0, 0.05, 0.15, 0.45, 0.85, 0.95])[satisfaction]
    names = list(TOPICS)
    comments, topics_of, planted = [], [], []
    rows = patients.set_index(patients.patient_id.astype(str).str.strip())
    for i in range(n):
        if not has_comment[i]:
            comments.append(None)
            topics_of.append("")
            continue
        lean = np.array([TOPICS[t][1] for t in names]) * (1 if positive[i] else -1)
        weight = np.array([TOPICS[t][0] for t in names]) * np.exp(0.8 * lean)
        weight[names.index("delivery")] *= 1 + (DELIVERY_GROWTH - 1) * months[i]
        chosen = list(rng.choice(names, 1 + int(rng.random() < 0.2), replace=False, p=weight / weight.sum()))
        text = _comment(chosen, bool(positive[i]), bool(english[i]), rng)
        if rng.random() < IDENTIFIER_RATE:
            kind = IDENTIFIER_KINDS[rng.integers(len(IDENTIFIER_KINDS))]
            carrier, value = _identifier(kind, rows.loc[str(patient_id[i]).strip()], rng, bool(english[i]))
            text = f"{carrier}, {text}" if english[i] else f"{carrier}，{text}"
            planted.append({"patient_id": str(patient_id[i]).strip(), "kind": kind, "value": value,
                            "where": "comment"})
        if rng.random() < SENSITIVE_RATE:
            family, text = SENSITIVE_COMMENTS[rng.integers(len(SENSITIVE_COMMENTS))]
            chosen = [f"sensitive:{family}"]
        comments.append(text)
        topics_of.append("|".join(chosen))
    responded_at = visit.responded.to_numpy().astype("datetime64[s]")
    table = pd.DataFrame({"patient_id": patient_id, "responded_at": responded_at,
                          "satisfaction": satisfaction, "nps": nps, "comment": comments})
    truth = pd.DataFrame({"patient_id": [str(x).strip() for x in patient_id], "responded_at": responded_at,
                          "segment_id": p["seg"][owner], "channel": visit.channel.to_numpy(),
                          "facility_id": visit.facility_id.to_numpy(),
                          "category": visit.product_id.map(categories).to_numpy(), "campaign_id": contacted,
                          "expected_satisfaction": np.round(mean, 6), "language": np.where(english, "en", "zh"),
                          "tone": np.where(positive, "positive", "negative"), "topics": topics_of})
    return {"surveys": table, "comments": truth, "identifiers": pd.DataFrame(planted)}


def _around(mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A whole number whose expectation is exactly `mean`: floor or ceiling, by the fraction."""
    low = np.floor(mean)
    return (low + (rng.random(len(mean)) < mean - low)).astype(int)


def _recent_treatment(contacts: pd.DataFrame, patient_id: np.ndarray, responded: np.ndarray) -> np.ndarray:
    """The campaign whose treatment contact came latest in the CAMPAIGN_WINDOW_DAYS before each response."""
    treated = contacts[contacts.arm == "treatment"]
    at = pd.to_datetime(treated.contacted_at).astype("datetime64[s]").astype(np.int64).to_numpy()
    frame = pd.DataFrame({"patient_id": treated.patient_id.astype(str).str.strip().to_numpy(), "at": at,
                          "campaign_id": treated.campaign_id.to_numpy()}).sort_values("at")
    asked = pd.DataFrame({"patient_id": [str(x).strip() for x in patient_id], "responded": responded,
                          "i": np.arange(len(patient_id))}).sort_values("responded")
    hit = pd.merge_asof(asked, frame, left_on="responded", right_on="at", by="patient_id", direction="backward",
                        tolerance=CAMPAIGN_WINDOW_DAYS * SECONDS_PER_DAY).sort_values("i")
    return hit.campaign_id.to_numpy(dtype=object)


QUERY_IDENTIFIER_RATE = 0.02  # search queries into which a patient pasted their own phone, e-mail or name


def plant_in_queries(seed: int, first: int, events: pd.DataFrame, patients: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events with some search queries carrying the searcher's own identifier, and those identifiers."""
    rng = np.random.default_rng([seed, first, 37])
    hit = np.flatnonzero(events["query"].notna().to_numpy() & events.patient_id.notna().to_numpy()
                         & (rng.random(len(events)) < QUERY_IDENTIFIER_RATE))
    if not len(hit):
        return events, pd.DataFrame()
    rows = patients.set_index(patients.patient_id.astype(str).str.strip())
    queries, planted = events["query"].to_numpy(dtype=object).copy(), []
    for i in hit:
        pid = str(events.patient_id.iat[i]).strip()
        row = rows.loc[pid]
        kind = ("phone", "email", "name")[rng.integers(3)]
        value = {"phone": row.phone.replace("+86 ", ""), "email": row.email, "name": row.full_name}[kind]
        queries[i] = f"{queries[i]} {value}"
        planted.append({"patient_id": pid, "kind": kind, "value": value, "where": "query"})
    return events.assign(query=queries), pd.DataFrame(planted)


def planted_truth() -> dict:
    """What the driver model should find, for `_truth/voice.json`."""
    return {
        "segment_base": dict(zip((s[0] for s in W.SEGMENTS), SEGMENT_BASE)),
        "channel": CHANNEL, "category": CATEGORY, "facility": FACILITY, "campaign": CAMPAIGN,
        "campaign_window_days": CAMPAIGN_WINDOW_DAYS, "nps": {"slope": NPS_SLOPE, "intercept": NPS_INTERCEPT},
        "topics": {name: {"key_terms": list(KEY_TERMS[name]), "phrases": list(t[2] + t[3] + t[4] + t[5])}
                   for name, t in TOPICS.items()},
        "trend": {"topic": "delivery", "growth": DELIVERY_GROWTH},
        "visit": "the respondent's latest order at or before the response; its first line's category",
    }
