"""Next best offer: one patient's recommendations (looked up by pseudonym) and why; how the model was chosen."""
import altair as alt
import streamlit as st

from medmkt_assets.app import charts, data, i18n, ui
from medmkt_assets.lib.models.recommender_selection import ranking_split

lang, snap = ui.lang(), ui.snapshot()
names = data.Names.of(snap)
catalog = snap.table("marts_product_catalog").set_index("product_id")
st.title(ui.t("nav.offers"))
st.caption(ui.t("offers.intro"))

key = st.text_input(ui.t("offers.key"), max_chars=64).strip().lower()
if key and not data.PSEUDONYM.match(key):
    st.warning(ui.t("offers.bad_key"))
elif key:
    segment, recs = snap.patient(key)
    if segment is None and recs.empty:
        st.info(ui.t("offers.unknown"))
    else:
        st.markdown(ui.escape(ui.t("offers.segment", label=i18n.segment_label(segment, lang))))
        st.subheader(ui.t("offers.list"))
        recs = recs.assign(product=recs.product_id.map(lambda p: names.item(p, lang)),
                           category=recs.product_id.map(catalog.category),
                           kind=recs.product_id.map(catalog.kind),
                           why=recs.model.map(lambda m: ui.t(data.recommendation_reason(m))))
        ui.table(recs, {"rank": ("col.rank", "int"), "product": ("col.product", "text"),
                        "category": ("col.category", "term"), "kind": ("col.kind", "term"),
                        "why": ("col.why", "text"), "score": ("col.score", "decimal3")})

st.subheader(ui.t("offers.models"))
st.caption(ui.t("offers.models_help"))
evaluation = snap.table("marts_recommendation_evaluation")
champion = snap.serving_model()
if champion:
    st.markdown(ui.escape(ui.t("offers.serving", model=data.model_name(champion, lang))))
ranked = ranking_split(evaluation)
if len(ranked):
    ndcg = next(c for c in ranked.columns if c.startswith("ndcg_at_"))
    ranked = ranked.assign(model_text=ranked.model.map(lambda m: data.model_name(m, lang)),
                           value_text=ranked[ndcg].map(lambda v: i18n.number(v, lang, 3)))
    ui.chart(charts.bars(ranked, ndcg, "model_text", data.metric_name(ndcg, lang), ui.t("col.model"),
                         tooltip=[ui.tip("model_text", "col.model"),
                                  alt.Tooltip("value_text:N", title=data.metric_name(ndcg, lang))],
                         value_format=".3f"))
    ui.show(data.evaluation_table(evaluation, lang))
