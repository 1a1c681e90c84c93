"""Campaigns: uplift over a random control group with its confidence interval, cost, incremental revenue, ROI."""
import pandas as pd
import streamlit as st

from medmkt_assets.app import charts, data, i18n, ui

lang, snap = ui.lang(), ui.snapshot()
effects = snap.table("marts_campaign_effects").sort_values("campaign_id")
by_group = snap.table("marts_campaign_effects_by_group")
st.title(ui.t("nav.campaigns"))
st.caption(ui.t("campaigns.intro"))
if effects.empty:
    st.info(ui.t("campaigns.none"))
    st.stop()
effects["label"] = [f"{name} · {i18n.term(channel, lang)}" for name, channel in zip(effects.name, effects.channel)]


def why(rows: pd.DataFrame) -> dict:
    """The 'why hidden' column, where a row is hidden."""
    return {"why_hidden": ("col.why_hidden", "text")} if rows.suppressed.fillna(False).astype(bool).any() else {}


def why_hidden(rows: pd.DataFrame, partitioned: bool) -> pd.DataFrame:
    """The rows with the reason each hidden one is hidden, in words (empty where published)."""
    return rows.assign(why_hidden=data.hidden_reason(rows, partitioned).map(lambda k: ui.t(k) if k else ""))


# A ROI these flags mark is not shown at all (lib.models.campaigns: the cost behind it is missing or
# incomplete, or the figure is beyond belief); "uplift_not_significant" is shown with its warning.
ROI_NOT_SHOWN = ("no_cost", "cost_incomplete", "implausibly_high")


def roi_checked(rows: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The rows with an unbelievable ROI blanked and, where any row is flagged, the check in words."""
    flags = rows["roi_flag"] if "roi_flag" in rows else pd.Series(None, index=rows.index, dtype=object)
    flagged = flags.notna() & (flags.astype(str) != "")
    rows = rows.assign(roi=rows.roi.mask(flags.isin(ROI_NOT_SHOWN)),
                       roi_check=[ui.t(f"roi.{f}") if ok else "" for f, ok in zip(flags, flagged)])
    return rows, ({"roi_check": ("col.roi_check", "text")} if flagged.any() else {})


def forest(rows: pd.DataFrame, label_key: str) -> None:
    """Published rows as a forest plot; hidden ones named underneath."""
    shown = rows[rows.uplift.notna()]
    shown = shown.assign(uplift_text=shown.uplift.map(lambda v: i18n.points(v, lang)),
                         ci_text=[f"{i18n.points(lo, lang)} … {i18n.points(hi, lang)}"
                                  for lo, hi in zip(shown.uplift_ci_low, shown.uplift_ci_high)],
                         p_text=shown.p_value.map(lambda v: i18n.number(v, lang, 3)))
    if len(shown):
        ui.chart(charts.forest(shown, "label", "uplift", "uplift_ci_low", "uplift_ci_high", ui.t(label_key),
                               ui.t("campaigns.forest_x"),
                               tooltip=[ui.tip("label", label_key), ui.tip("uplift_text", "col.uplift"),
                                        ui.tip("ci_text", "col.ci"), ui.tip("p_text", "col.p_value")]))
    hidden = rows.label[rows.uplift.isna()]
    if len(hidden):
        st.caption(ui.t("campaigns.hidden_rows", names=i18n.join(hidden, lang)))


st.subheader(ui.t("campaigns.effects"))
forest(effects, "col.campaign")
effects = why_hidden(effects, partitioned=False)
ui.table(effects, {
    "name": ("col.campaign", "text"), "channel": ("col.channel", "term"), "purpose": ("col.purpose", "term"),
    "target_category": ("col.target", "term"), "start_date": ("col.start", "date"),
    "treated": ("col.treated", "count"), "control": ("col.control", "count"),
    "treated_conversion_rate": ("col.treated_rate", "percent"),
    "control_conversion_rate": ("col.control_rate", "percent"), "uplift": ("col.uplift", "points"),
    "uplift_ci_low": ("col.ci_low", "points"), "uplift_ci_high": ("col.ci_high", "points"),
    "p_value": ("col.p_value", "decimal3"), **why(effects),
})

st.subheader(ui.t("campaigns.money"))
money = effects[effects.incremental_revenue.notna() & effects.cost.notna()].melt(
    id_vars=["label"], value_vars=["cost", "incremental_revenue"], var_name="what", value_name="amount")
money = money.assign(what_text=money.what.map(lambda w: ui.t(f"col.{w}")),
                     amount_text=money.amount.map(lambda v: i18n.money(v, lang)))
if len(money):
    ui.chart(charts.grouped_bars(money, "label", "what_text", "amount", ui.t("col.campaign"), ui.t("col.amount"),
                                 ui.t("col.what"),
                                 tooltip=[ui.tip("label", "col.campaign"), ui.tip("what_text", "col.what"),
                                          ui.tip("amount_text", "col.amount")]))
money_rows, roi_check = roi_checked(effects)
ui.table(money_rows, {"name": ("col.campaign", "text"), "cost": ("col.cost", "money"),
                      "cost_per_contact": ("col.cost_per_contact", "money"),
                      "incremental_revenue": ("col.incremental_revenue", "money"), "roi": ("col.roi", "percent"),
                      **roi_check, **why(effects)})

st.subheader(ui.t("campaigns.by_segment"))
campaign = st.selectbox(ui.t("campaigns.pick"), effects.campaign_id.tolist(),
                        format_func=dict(zip(effects.campaign_id, effects.label)).get)
segments = by_group[(by_group.campaign_id == campaign) & (by_group.group_type == "segment")]
segments = why_hidden(segments.assign(label=segments.group_value.map(lambda v: i18n.segment_label(v, lang))),
                      partitioned=True)
forest(segments, "col.segment")
ui.table(segments, {
    "label": ("col.segment", "text"), "treated": ("col.treated", "count"), "control": ("col.control", "count"),
    "uplift": ("col.uplift", "points"), "uplift_ci_low": ("col.ci_low", "points"),
    "uplift_ci_high": ("col.ci_high", "points"), "incremental_revenue": ("col.incremental_revenue", "money"), **why(segments),
})

st.subheader(ui.t("campaigns.by_channel"))
channels = data.fill_from_campaigns(by_group[by_group.group_type == "channel"], effects)
channels = why_hidden(channels.assign(label=channels.group_value.map(lambda v: i18n.term(v, lang))), partitioned=True)
forest(channels, "col.channel")
if channels.from_campaigns.any():
    st.caption(ui.t("campaigns.from_campaigns", names=i18n.join(channels.label[channels.from_campaigns], lang)))
channels, roi_check = roi_checked(channels)
ui.table(channels, {
    "label": ("col.channel", "text"), "treated": ("col.treated", "count"), "control": ("col.control", "count"),
    "uplift": ("col.uplift", "points"), "uplift_ci_low": ("col.ci_low", "points"),
    "uplift_ci_high": ("col.ci_high", "points"), "cost": ("col.cost", "money"),
    "incremental_revenue": ("col.incremental_revenue", "money"), "roi": ("col.roi", "percent"), **roi_check,
    **why(channels),
})
ui.hidden_note()
