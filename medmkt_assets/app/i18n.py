"""Every word the insight app shows, in English and Simplified Chinese, and locale formatting.

`t(key, lang)` gives the app's own text; `term(value, lang)` a word the data uses
(categories, channels, purposes, kinds, exclusion reasons); `segment_label` translates the
generated segment labels part by part. Numbers and dates go through Babel in the chosen
locale, and a hidden (suppressed) cell always renders as HIDDEN, never as a number.
"""
from __future__ import annotations

import datetime as dt
import re

import pandas as pd
from babel.dates import format_date, format_datetime, format_skeleton
from babel.numbers import format_currency, format_decimal, format_percent

LANGUAGES = {"en": "English", "zh": "简体中文"}
LOCALES = {"en": "en", "zh": "zh_Hans_CN"}
CURRENCY = "CNY"

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "app.title": "medmkt insight",
        "app.language": "Language",
        "app.published": "Data published {when}",
        "app.run": "Pipeline run {run}",
        "app.snapshot_tables": "Tables in this snapshot",
        "nav.segments": "Patient segments",
        "nav.demand": "Market demand",
        "nav.rules": "What goes together",
        "nav.offers": "Next best offer",
        "nav.campaigns": "Campaigns",
        "nav.audiences": "Audiences",
        "hidden": "<11",
        "note.hidden": "<11 = hidden: fewer than 11 people, or a cell from which such a count could be worked "
                       "out. Totals add up published cells only.",
        "yes": "yes",
        "choose": "Choose",
        "no": "no",
        "unit.pp": " pp",
        "item.category": "Category: {name}",
        "item.condition": "Condition: {name}",
        "col.table_name": "Table",
        "col.rows": "Rows",
        "col.segment": "Segment",
        "col.patients": "Patients",
        "col.share": "Share of patients",
        "col.age_band": "Typical age",
        "col.female_share": "Women",
        "col.recency": "Days since last order",
        "col.frequency": "Orders per patient",
        "col.monetary": "Spend per patient (CNY)",
        "col.order_value": "Order value (CNY)",
        "col.digital": "Digital events",
        "col.satisfaction": "Satisfaction (1–5)",
        "col.chronic": "With a chronic condition",
        "col.consent": "Marketing consent",
        "col.channel": "Channel",
        "col.preferred_channel": "Preferred channel",
        "col.top_categories": "Top categories",
        "col.contacted": "Contacted in campaigns",
        "col.conversion": "Campaign conversion",
        "col.index": "Index (100 = average)",
        "col.measure": "Measure",
        "col.month": "Month",
        "col.region": "Region",
        "col.category": "Category",
        "col.orders": "Orders",
        "col.revenue": "Revenue (CNY)",
        "col.if": "If bought",
        "col.then": "Then also",
        "col.support": "Support",
        "col.confidence": "Confidence",
        "col.lift": "Lift",
        "col.count_basket": "Orders with both",
        "col.count_patient": "Patients with both",
        "col.rank": "Rank",
        "col.product": "Product",
        "col.kind": "Kind",
        "col.reason": "Reason",
        "col.why": "Why",
        "col.score": "Score",
        "col.model": "Model",
        "col.split": "Test",
        "col.campaign": "Campaign",
        "col.purpose": "Purpose",
        "col.target": "Target category",
        "col.start": "Start",
        "col.treated": "Contacted",
        "col.control": "Control group",
        "col.treated_rate": "Conversion (contacted)",
        "col.control_rate": "Conversion (control)",
        "col.uplift": "Uplift",
        "col.ci": "95% CI",
        "col.ci_low": "95% CI from",
        "col.ci_high": "95% CI to",
        "col.p_value": "p-value",
        "col.cost": "Cost (CNY)",
        "col.incremental_revenue": "Incremental revenue (CNY)",
        "col.roi": "ROI",
        "col.file": "File",
        "col.written": "Written",
        "col.exported": "Contacts exported",
        "col.ranked_by": "Ranked by",
        "col.basis": "Trained on",
        "col.qini": "Qini",
        "col.ranks": "Ranks the audience",
        "col.amount": "Amount (CNY)",
        "col.what": "What",
        "metric.precision": "Precision@{k}",
        "metric.recall": "Recall@{k}",
        "metric.ndcg": "NDCG@{k}",
        "metric.map": "MAP@{k}",
        "metric.catalog_coverage": "Catalogue coverage",
        "metric.novelty": "Novelty",
        "segments.intro": "Groups of patients who buy alike, found by clustering their purchases. A label says what "
                          "sets the segment apart: value, category, channel and typical age.",
        "segments.count": "Segments",
        "segments.patients": "Patients in published segments",
        "segments.hidden": "Hidden segments",
        "segments.size": "Patients per segment",
        "segments.who": "Who they are",
        "segments.how": "How they buy and respond",
        "segments.apart": "What sets each segment apart",
        "segments.apart_help": "Each segment's mean against the average of the segments shown, weighted by their "
                               "patients (100 = average).",
        "segments.hidden_list": "Hidden: {names}",
        "demand.intro": "Orders, patients and revenue by month, region and category. Cells of 1–10 patients are "
                        "hidden, and totals add up published cells only (a patient or an order in two categories "
                        "counts in both).",
        "demand.measure": "Measure",
        "demand.regions": "Regions",
        "demand.categories": "Categories",
        "demand.months": "Months",
        "demand.trend": "By month and category",
        "demand.by_region": "By region and category",
        "demand.cells": "Cells",
        "demand.hidden_cells": "{n} of {total} cells in this selection are hidden and not counted.",
        "demand.rows_shown": "The latest {n} of {total} cells.",
        "demand.empty": "Nothing matches this selection.",
        "measure.revenue": "Revenue (CNY)",
        "measure.orders": "Orders",
        "measure.patients": "Patients",
        "rules.intro": "Products bought together more often than chance would have it; across a patient's whole "
                       "history also categories and conditions. Lift above 1: they go together; confidence: how "
                       "often the 'then' follows the 'if'.",
        "rules.scope": "Bought together in",
        "scope.basket": "the same order",
        "scope.patient": "the same patient's history",
        "rules.min_lift": "Minimum lift",
        "rules.min_confidence": "Minimum confidence",
        "rules.product": "Product",
        "rules.any_product": "Any product",
        "rules.rows": "Rules to list",
        "rules.count": "Rules",
        "rules.scatter": "Support, confidence and lift",
        "rules.network": "Strongest links",
        "rules.network_help": "The {n} rules with the highest lift; each line widens towards its 'then'.",
        "rules.capped": "The chart shows the {n} rules with the highest lift.",
        "rules.empty": "No rule matches these filters.",
        "offers.intro": "Type a patient's pseudonym (patient_key) to see what to offer next and why. Pseudonyms "
                        "only: names and contact details are never in this app.",
        "offers.key": "Patient pseudonym",
        "offers.bad_key": "A pseudonym is 64 characters, 0–9 and a–f.",
        "offers.unknown": "No patient with this pseudonym in the snapshot.",
        "offers.segment": "Segment: {label}",
        "offers.list": "Recommended products",
        "offers.models": "How the recommender was chosen",
        "offers.models_help": "Each candidate model is trained on part of the orders and scored on orders it did "
                              "not see; the best NDCG on the latest orders serves the lists.",
        "offers.serving": "{model} serves the lists.",
        "reason.similar": "Similar patients bought it",
        "reason.content": "New product like what the patient bought",
        "reason.segment": "Favourite in the patient's segment",
        "reason.popular": "Popular with all patients",
        "split.holdout": "latest orders held out",
        "split.stratified": "random share held out",
        "model.popularity": "Most popular overall",
        "model.popularity_by_segment": "Most popular in the segment",
        "model.itemknn": "Bought with the same products ({detail})",
        "model.content": "Similar product descriptions",
        "model.ease": "EASE (λ = {value})",
        "model.decay": "recent purchases weigh more",
        "campaigns.intro": "Past campaigns against a random control group that was not contacted: uplift is the "
                           "conversion of the contacted minus that of the control group, with its 95% confidence "
                           "interval.",
        "campaigns.effects": "Effect per campaign",
        "campaigns.money": "Cost and incremental revenue",
        "campaigns.by_segment": "By segment",
        "campaigns.by_channel": "By channel, all campaigns",
        "campaigns.pick": "Campaign",
        "campaigns.hidden_rows": "Hidden (too few people): {names}",
        "campaigns.none": "No past campaigns in this snapshot.",
        "campaigns.forest_x": "Uplift in conversion (percentage points, 95% CI)",
        "audiences.intro": "Who each planned campaign may reach. Every profiled patient counts once: selected (to "
                           "contact, or held out to measure the effect) or with the first reason they were left "
                           "out. Contact details stay in the export files and never appear here.",
        "audiences.none": "No planned campaigns in this snapshot.",
        "audiences.reasons": "Patients by reason",
        "audiences.export": "Export file",
        "audiences.models": "Uplift models",
        "audiences.models_help": "An audience is ranked by expected uplift only where its model beat random "
                                 "targeting on past contacts (Qini above 0); otherwise by propensity score.",
        "missing.title": "No insight snapshot yet",
        "missing.body": "There is no snapshot at {path}. Run `make run` first: the pipeline publishes it at the "
                        "end of a run.",
    },
    "zh": {
        "app.title": "medmkt 洞察",
        "app.language": "语言",
        "app.published": "数据发布于 {when}",
        "app.run": "流水线运行 {run}",
        "app.snapshot_tables": "本快照中的数据表",
        "nav.segments": "患者分群",
        "nav.demand": "市场需求",
        "nav.rules": "关联购买",
        "nav.offers": "下一步推荐",
        "nav.campaigns": "营销活动",
        "nav.audiences": "目标受众",
        "hidden": "已隐藏",
        "note.hidden": "已隐藏：少于11人，或可据以推算出此类人数的单元格。合计只包含已公开的单元格。",
        "yes": "是",
        "choose": "请选择",
        "no": "否",
        "unit.pp": "个百分点",
        "item.category": "品类：{name}",
        "item.condition": "疾病：{name}",
        "col.table_name": "数据表",
        "col.rows": "行数",
        "col.segment": "分群",
        "col.patients": "患者数",
        "col.share": "患者占比",
        "col.age_band": "典型年龄段",
        "col.female_share": "女性占比",
        "col.recency": "距上次购买天数",
        "col.frequency": "人均订单数",
        "col.monetary": "人均消费（元）",
        "col.order_value": "客单价（元）",
        "col.digital": "数字互动次数",
        "col.satisfaction": "满意度（1–5）",
        "col.chronic": "慢病患者占比",
        "col.consent": "营销同意占比",
        "col.channel": "渠道",
        "col.preferred_channel": "偏好渠道",
        "col.top_categories": "主要品类",
        "col.contacted": "活动触达人数",
        "col.conversion": "活动转化率",
        "col.index": "指数（100 = 平均）",
        "col.measure": "指标",
        "col.month": "月份",
        "col.region": "地区",
        "col.category": "品类",
        "col.orders": "订单数",
        "col.revenue": "收入（元）",
        "col.if": "如果购买",
        "col.then": "则也购买",
        "col.support": "支持度",
        "col.confidence": "置信度",
        "col.lift": "提升度",
        "col.count_basket": "同时包含的订单数",
        "col.count_patient": "同时具备的患者数",
        "col.rank": "排名",
        "col.product": "商品",
        "col.kind": "类型",
        "col.reason": "原因",
        "col.why": "推荐理由",
        "col.score": "得分",
        "col.model": "模型",
        "col.split": "检验方式",
        "col.campaign": "活动",
        "col.purpose": "目的",
        "col.target": "目标品类",
        "col.start": "开始",
        "col.treated": "触达人数",
        "col.control": "对照组人数",
        "col.treated_rate": "转化率（触达组）",
        "col.control_rate": "转化率（对照组）",
        "col.uplift": "增益",
        "col.ci": "95%置信区间",
        "col.ci_low": "95%置信区间下限",
        "col.ci_high": "95%置信区间上限",
        "col.p_value": "p值",
        "col.cost": "成本（元）",
        "col.incremental_revenue": "增量收入（元）",
        "col.roi": "投资回报率",
        "col.file": "文件",
        "col.written": "写入时间",
        "col.exported": "导出联系人数",
        "col.ranked_by": "排序依据",
        "col.basis": "训练数据",
        "col.qini": "Qini系数",
        "col.ranks": "用于受众排序",
        "col.amount": "金额（元）",
        "col.what": "项目",
        "metric.precision": "精确率@{k}",
        "metric.recall": "召回率@{k}",
        "metric.ndcg": "NDCG@{k}",
        "metric.map": "MAP@{k}",
        "metric.catalog_coverage": "商品覆盖率",
        "metric.novelty": "新颖度",
        "segments.intro": "按购买行为聚类得到的患者群体。"
                          "标签说明该分群的突出之处：价值、品类、渠道和典型年龄。",
        "segments.count": "分群数",
        "segments.patients": "已公开分群中的患者",
        "segments.hidden": "已隐藏分群",
        "segments.size": "各分群患者数",
        "segments.who": "人群特征",
        "segments.how": "购买与响应",
        "segments.apart": "各分群的突出特征",
        "segments.apart_help": "各分群均值相对于所示分群（按患者数加权）平均值的指数（100 = 平均）。",
        "segments.hidden_list": "已隐藏：{names}",
        "demand.intro": "按月份、地区和品类统计的订单、患者和收入。1–10名患者的单元格已隐藏，合计只包含已公开的单元格"
                        "（跨两个品类的患者或订单在两个品类中都计入）。",
        "demand.measure": "指标",
        "demand.regions": "地区",
        "demand.categories": "品类",
        "demand.months": "月份",
        "demand.trend": "按月份和品类",
        "demand.by_region": "按地区和品类",
        "demand.cells": "单元格",
        "demand.hidden_cells": "本次筛选的 {total} 个单元格中有 {n} 个已隐藏，未计入合计。",
        "demand.rows_shown": "显示最近的 {n} 个单元格（共 {total} 个）。",
        "demand.empty": "没有符合筛选条件的数据。",
        "measure.revenue": "收入（元）",
        "measure.orders": "订单数",
        "measure.patients": "患者数",
        "rules.intro": "比随机情况更常一起购买的商品；在患者的完整历史中还包括品类和疾病。提升度大于1表示二者相关；"
                       "置信度表示购买了“如果”之后也购买“则”的比例。",
        "rules.scope": "共同出现于",
        "scope.basket": "同一订单",
        "scope.patient": "同一患者的历史",
        "rules.min_lift": "最小提升度",
        "rules.min_confidence": "最小置信度",
        "rules.product": "商品",
        "rules.any_product": "全部商品",
        "rules.rows": "列出的规则数",
        "rules.count": "规则数",
        "rules.scatter": "支持度、置信度与提升度",
        "rules.network": "最强关联",
        "rules.network_help": "提升度最高的 {n} 条规则；每条连线向“则”的一端逐渐变宽。",
        "rules.capped": "图中显示提升度最高的 {n} 条规则。",
        "rules.empty": "没有符合筛选条件的规则。",
        "offers.intro": "输入患者假名（patient_key），查看下一步推荐的商品及理由。"
                        "这里只有假名：本应用从不显示姓名和联系方式。",
        "offers.key": "患者假名",
        "offers.bad_key": "假名由64个字符组成，只含0–9和a–f。",
        "offers.unknown": "快照中没有此假名的患者。",
        "offers.segment": "所属分群：{label}",
        "offers.list": "推荐商品",
        "offers.models": "推荐模型如何选出",
        "offers.models_help": "每个候选模型用部分订单训练，再用它没见过的订单打分；"
                              "在最近订单上NDCG最高的模型生成推荐列表。",
        "offers.serving": "当前由 {model} 生成推荐列表。",
        "reason.similar": "相似患者购买过",
        "reason.content": "与已购商品相似的新品",
        "reason.segment": "所在分群的热门商品",
        "reason.popular": "全体患者中的热门商品",
        "split.holdout": "留出最近的订单",
        "split.stratified": "随机留出部分订单",
        "model.popularity": "总体最热门",
        "model.popularity_by_segment": "分群内最热门",
        "model.itemknn": "与相同商品一起购买（{detail}）",
        "model.content": "商品描述相似",
        "model.ease": "EASE（λ = {value}）",
        "model.decay": "近期购买权重更高",
        "campaigns.intro": "与未被触达的随机对照组比较的历史活动：增益 = 触达组转化率减去对照组转化率，"
                           "并给出95%置信区间。",
        "campaigns.effects": "各活动效果",
        "campaigns.money": "成本与增量收入",
        "campaigns.by_segment": "按分群",
        "campaigns.by_channel": "按渠道（全部活动）",
        "campaigns.pick": "活动",
        "campaigns.hidden_rows": "已隐藏（人数过少）：{names}",
        "campaigns.none": "快照中没有历史活动。",
        "campaigns.forest_x": "转化率增益（百分点，95%置信区间）",
        "audiences.intro": "每个计划中的活动可以触达谁。每位已建档患者只计一次：入选（联系，或留作对照以衡量效果），"
                           "或按其被排除的第一个原因计数。联系方式只在导出文件中，从不在此显示。",
        "audiences.none": "快照中没有计划中的活动。",
        "audiences.reasons": "按原因统计的患者",
        "audiences.export": "导出文件",
        "audiences.models": "增益模型",
        "audiences.models_help": "只有当活动的增益模型在历史触达中优于随机选择（Qini大于0）时，才按预期增益排序受众；"
                                 "否则按倾向得分排序。",
        "missing.title": "尚无洞察快照",
        "missing.body": "{path} 处没有快照。请先运行 `make run`：流水线在运行结束时发布快照。",
    },
}

# Words of the data: categories (CATEGORY_KEYWORDS and the demo world), order and campaign
# channels, purposes, product kinds, rule scopes, campaign status, exclusion reasons,
# uplift training bases and learners, the parts of segment labels (lib/models/segments.py), and the
# demo world's regions. A word not listed is shown as the data writes it.
TERMS: dict[str, dict[str, str]] = {
    "en": {
        "cardiology": "cardiology", "diabetes_care": "diabetes care", "dermatology": "dermatology",
        "vaccination": "vaccination", "checkup": "checkup", "respiratory": "respiratory",
        "womens_health": "women's health", "pediatrics": "pediatrics", "mental_health": "mental health", "wellbeing": "wellbeing",
        "orthopedics": "orthopedics", "pain_relief": "pain relief", "dental": "dental", "other": "other",
        "store": "store", "online": "online", "app": "app", "phone": "phone", "clinic": "clinic",
        "unknown": "unknown", "sms": "SMS", "email": "email", "app_push": "app push", "call": "call",
        "wechat": "WeChat", "all campaigns": "all campaigns", "all": "all channels", "the channel": "the channel",
        "marketing": "marketing", "refill_reminder": "refill reminder", "health_education": "health education",
        "service": "service", "drug": "drug", "device": "device", "test": "test",
        "past": "past", "planned": "planned", "segment": "segment", "channel": "channel",
        "high value": "high value", "mid value": "mid value", "low value": "low value",
        "no purchases yet": "no purchases yet", "all patients": "all patients", "90+": "90+",
        "deceased": "deceased", "not currently taking a drug of the category":
            "not currently taking a drug of the category",
        "refill reminders revoked": "refill reminders revoked",
        "ranked below the audience cut-off": "ranked below the audience cut-off",
        "selected: contact": "selected: to contact", "selected: holdout": "selected: held out (control)",
        "expected uplift": "expected uplift", "propensity score": "propensity score",
        "all past campaigns": "all past campaigns", "same target category": "past campaigns of the same category",
        "t_learner_logistic": "two-model (logistic)", "x_learner_ridge": "X-learner (ridge)",
        "cosine": "cosine", "jaccard": "Jaccard", "lift": "lift",
        "Guangdong": "Guangdong", "Beijing": "Beijing", "Shanghai": "Shanghai", "Zhejiang": "Zhejiang",
        "Jiangsu": "Jiangsu", "Sichuan": "Sichuan", "Hubei": "Hubei", "Shandong": "Shandong",
    },
    "zh": {
        "cardiology": "心血管", "diabetes_care": "糖尿病护理", "dermatology": "皮肤科", "vaccination": "疫苗接种",
        "checkup": "体检", "respiratory": "呼吸科", "womens_health": "女性健康", "pediatrics": "儿科",
        "mental_health": "心理健康", "wellbeing": "身心健康", "orthopedics": "骨科", "pain_relief": "止痛", "dental": "口腔",
        "other": "其他",
        "store": "门店", "online": "线上", "app": "App", "phone": "电话", "clinic": "诊所", "unknown": "未知",
        "sms": "短信", "email": "电子邮件", "app_push": "App推送", "call": "电话外呼", "wechat": "微信",
        "all campaigns": "全部活动", "all": "全部渠道", "the channel": "该渠道",
        "marketing": "营销", "refill_reminder": "续药提醒", "health_education": "健康教育",
        "service": "服务", "drug": "药品", "device": "器械", "test": "检测",
        "past": "已结束", "planned": "计划中", "segment": "分群", "channel": "渠道",
        "high value": "高价值", "mid value": "中等价值", "low value": "低价值",
        "no purchases yet": "尚未购买", "all patients": "全部患者", "90+": "90岁及以上",
        "deceased": "已故", "not currently taking a drug of the category": "目前未服用该品类药品",
        "refill reminders revoked": "已撤回续药提醒",
        "ranked below the audience cut-off": "排名低于受众截止线",
        "selected: contact": "入选：联系", "selected: holdout": "入选：留作对照",
        "expected uplift": "预期增益", "propensity score": "倾向得分",
        "all past campaigns": "全部历史活动", "same target category": "同品类的历史活动",
        "t_learner_logistic": "双模型（逻辑回归）", "x_learner_ridge": "X-学习器（岭回归）",
        "cosine": "余弦", "jaccard": "杰卡德", "lift": "提升度",
        "Guangdong": "广东", "Beijing": "北京", "Shanghai": "上海", "Zhejiang": "浙江",
        "Jiangsu": "江苏", "Sichuan": "四川", "Hubei": "湖北", "Shandong": "山东",
    },
}
# Reasons built from a purpose or a channel (lib/privacy/audiences.py), translated by their parts.
REASON_PATTERNS = (
    (re.compile(r"^no (.+) consent$"), {"en": "no {0} consent", "zh": "无{0}同意"}),
    (re.compile(r"^(.+) consent revoked$"), {"en": "{0} consent revoked", "zh": "已撤回{0}同意"}),
    (re.compile(r"^no contact details for (.+)$"), {"en": "no contact details for {0}", "zh": "缺少{0}联系方式"}),
)
AGE_BAND = re.compile(r"^(\d+)-(\d+)$")
SEGMENT_SEPARATOR = " · "


def t(key: str, lang: str, **values) -> str:
    """The app's text for `key` in `lang`, with `{name}` placeholders filled."""
    text = TEXT[lang][key]
    return text.format(**values) if values else text


def term(value: str | None, lang: str) -> str:
    """A word of the data in `lang`; one the dictionary lacks is shown as written (underscores as spaces)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    key = str(value)
    for spelling in (key, key.replace(" ", "_"), key.replace("_", " ")):  # labels write categories with spaces
        if spelling in TERMS[lang]:
            return TERMS[lang][spelling]
    band = AGE_BAND.match(key)
    if band:
        return f"{band[1]}–{band[2]}岁" if lang == "zh" else key
    return key.replace("_", " ")


def reason(value: str, lang: str) -> str:
    """An audience exclusion reason in `lang`."""
    for pattern, template in REASON_PATTERNS:
        found = pattern.match(value)
        if found:
            return template[lang].format(term(found[1], lang))
    return term(value, lang)


def segment_label(label: str | None, lang: str) -> str:
    """'high value · diabetes care · clinic · 70-79 #3' in `lang`, part by part (the '#id' that
    makes a label unique is kept)."""
    if label is None or (not isinstance(label, str) and pd.isna(label)):
        return "–"
    text, _, suffix = str(label).partition(" #")
    parts = [term(part, lang) for part in text.split(SEGMENT_SEPARATOR)]
    return SEGMENT_SEPARATOR.join(parts) + (f" #{suffix}" if suffix else "")


def join(items, lang: str) -> str:
    """A list in running text: 'a, b' or 'a、b'."""
    return ("、" if lang == "zh" else ", ").join(items)


def term_list(value: str | None, lang: str) -> str:
    """A comma-separated list of data words ('diabetes_care, cardiology') in `lang`."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    return join((term(v.strip(), lang) for v in str(value).split(",")), lang)


def yes_no(value, lang: str) -> str:
    return "–" if value is None or pd.isna(value) else t("yes" if value else "no", lang)


def number(value, lang: str, digits: int = 0) -> str:
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=LOCALES[lang])


def percent(value, lang: str, digits: int = 1) -> str:
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    return format_percent(value, format=pattern, locale=LOCALES[lang])


def points(value, lang: str) -> str:
    """A difference of two rates in percentage points, signed: '+3.2 pp', '+3.2个百分点'."""
    return format_decimal(value * 100, format="+#,##0.0;-#,##0.0", locale=LOCALES[lang]) + t("unit.pp", lang)


def money(value, lang: str) -> str:
    return format_currency(value, CURRENCY, locale=LOCALES[lang])


def money_whole(value, lang: str) -> str:
    """Rounded to the yuan, where cents would crowd a chart."""
    return format_currency(value, CURRENCY, format="¤#,##0", currency_digits=False, locale=LOCALES[lang])


def date(value, lang: str) -> str:
    return format_date(pd.Timestamp(value).date(), format="medium", locale=LOCALES[lang])


def month(value, lang: str) -> str:
    return format_skeleton("yMMM", pd.Timestamp(value).date(), locale=LOCALES[lang])


def timestamp(value, lang: str) -> str:
    moment = pd.Timestamp(value)
    moment = moment.tz_convert("UTC") if moment.tzinfo else moment.tz_localize("UTC")
    return format_datetime(moment.to_pydatetime(), format="medium", tzinfo=dt.timezone.utc,
                           locale=LOCALES[lang]) + " UTC"


def missing_snapshot(path: str) -> tuple[str, str]:
    """Title and body of the no-snapshot message, in both languages at once (whoever reads it)."""
    return (" · ".join(t("missing.title", lang) for lang in LANGUAGES),
            "\n\n".join(t("missing.body", lang, path=path) for lang in LANGUAGES))
