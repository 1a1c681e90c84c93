"""Patient segments: how big each is, what its patients are like, and what sets it apart."""
import streamlit as st

from medmkt_assets.app import charts, data, i18n, ui

lang, snap = ui.lang(), ui.snapshot()
summary = snap.table("marts_segment_summary").sort_values("segment_id")
summary["label"] = summary.segment_label.map(lambda v: i18n.segment_label(v, lang))
hidden = summary.suppressed.fillna(True).astype(bool)

st.title(ui.t("nav.segments"))
st.caption(ui.t("segments.intro"))
left, middle, right = st.columns(3)
left.metric(ui.t("segments.count"), i18n.number(len(summary), lang))
middle.metric(ui.t("segments.patients"), i18n.number(data.published_total(summary.patients, hidden), lang))
right.metric(ui.t("segments.hidden"), i18n.number(int(hidden.sum()), lang))

st.subheader(ui.t("segments.size"))
sizes = summary[~hidden].assign(
    patients_text=lambda f: f.patients.map(lambda v: i18n.number(v, lang)),
    share_text=lambda f: f.share_of_patients.map(lambda v: i18n.percent(v, lang)))
ui.chart(charts.bars(sizes, "patients", "label", ui.t("col.patients"), ui.t("col.segment"),
                     tooltip=[ui.tip("label", "col.segment"), ui.tip("patients_text", "col.patients"),
                              ui.tip("share_text", "col.share")]))
if hidden.any():
    st.caption(ui.t("segments.hidden_list", names=i18n.join(summary.label[hidden], lang)))

st.subheader(ui.t("segments.who"))
ui.table(summary, {
    "segment_label": ("col.segment", "segment"), "patients": ("col.patients", "count"),
    "share_of_patients": ("col.share", "percent"), "typical_age_band": ("col.age_band", "term"),
    "female_share": ("col.female_share", "percent"), "chronic_condition_share": ("col.chronic", "percent"),
    "top_categories": ("col.top_categories", "terms"), "preferred_channel": ("col.preferred_channel", "term"),
})
st.subheader(ui.t("segments.how"))
ui.table(summary, {
    "segment_label": ("col.segment", "segment"), "avg_recency_days": ("col.recency", "decimal1"),
    "avg_frequency": ("col.frequency", "decimal1"), "avg_monetary": ("col.monetary", "money"),
    "avg_order_value": ("col.order_value", "money"), "avg_digital_events": ("col.digital", "decimal1"),
    "avg_satisfaction": ("col.satisfaction", "decimal2"), "marketing_consent_share": ("col.consent", "percent"),
    "contacted_patients": ("col.contacted", "count"), "campaign_conversion_rate": ("col.conversion", "percent"),
})

st.subheader(ui.t("segments.apart"))
st.caption(ui.t("segments.apart_help"))
relative = data.relative_profile(summary).dropna(subset=["index"])
relative = relative.assign(
    segment=relative.segment_id.map(summary.set_index("segment_id").label),
    measure_text=relative.measure.map(lambda m: ui.t(data.PROFILE_MEASURES[m])),
    index_text=relative["index"].map(lambda v: i18n.number(v, lang)))
if len(relative):
    ui.chart(charts.heatmap(relative, "measure_text", "segment", "index", "index_text", ui.t("col.measure"),
                            ui.t("col.segment"), ui.t("col.index"), mid=100,
                            tooltip=[ui.tip("segment", "col.segment"), ui.tip("measure_text", "col.measure"),
                                     ui.tip("index_text", "col.index")]))
ui.hidden_note()
