"""Audiences: who each planned campaign may reach, why the others are left out, what was exported (counts only)."""
import pandas as pd
import streamlit as st

from medmkt_assets.app import charts, i18n, ui

lang, snap = ui.lang(), ui.snapshot()
campaigns = snap.table("marts_campaign_catalog")
exclusions = snap.table("marts_audience_exclusions")
manifest = snap.table("ops_audience_manifest")
models = snap.table("marts_uplift_models")
st.title(ui.t("nav.audiences"))
st.caption(ui.t("audiences.intro"))
planned = campaigns[campaigns.status == "planned"]
if planned.empty:
    st.info(ui.t("audiences.none"))
    st.stop()

for campaign in planned.itertuples():
    st.header(f"{campaign.name} · {i18n.term(campaign.channel, lang)}")
    st.caption(" · ".join([i18n.term(campaign.purpose, lang), i18n.term(campaign.target_category, lang),
                           f"{i18n.date(campaign.start_date, lang)} – {i18n.date(campaign.end_date, lang)}"]))
    reasons = exclusions[exclusions.campaign_id == campaign.campaign_id]
    reasons = reasons.assign(reason_text=reasons.reason.map(lambda r: i18n.reason(r, lang)))
    st.subheader(ui.t("audiences.reasons"))
    published = reasons[reasons.patients.notna()]
    published = published.assign(patients_text=published.patients.map(lambda v: i18n.number(v, lang)))
    if len(published):
        ui.chart(charts.bars(published, "patients", "reason_text", ui.t("col.patients"), ui.t("col.reason"),
                             tooltip=[ui.tip("reason_text", "col.reason"), ui.tip("patients_text", "col.patients")]))
    ui.table(reasons, {"reason_text": ("col.reason", "text"), "patients": ("col.patients", "count")})

    st.subheader(ui.t("audiences.export"))
    export = manifest[manifest.campaign_id == campaign.campaign_id].drop_duplicates("campaign_id")
    ui.table(export.assign(suppressed=export.exported.isna()), {
        "file": ("col.file", "text"), "written_at": ("col.written", "timestamp"),
        "exported": ("col.exported", "count"), "ranked_by": ("col.ranked_by", "term")})

st.header(ui.t("audiences.models"))
st.caption(ui.t("audiences.models_help"))
shown = models.merge(campaigns[["campaign_id", "name"]], on="campaign_id", how="left")
if {"qini_ci_low", "qini_ci_high"} <= set(shown.columns):  # snapshots before the interval lack it
    shown = shown.assign(qini_ci=[f"{i18n.number(lo, lang, 4)} … {i18n.number(hi, lang, 4)}"
                                  if pd.notna(lo) and pd.notna(hi) else "–"
                                  for lo, hi in zip(shown.qini_ci_low, shown.qini_ci_high)])
else:
    shown = shown.assign(qini_ci="–")
ui.table(shown, {"name": ("col.campaign", "text"), "basis": ("col.basis", "term"), "model": ("col.model", "term"),
                 "qini_auc": ("col.qini", "decimal4"), "qini_ci": ("col.qini_ci", "text"),
                 "ranks_audience": ("col.ranks", "yes_no")})
ui.hidden_note()
