"""Next best offer: one patient's recommendations (picked from a segment, or looked up by pseudonym)
and why; how the serving model was chosen."""
import altair as alt
import streamlit as st

from medmkt_assets.app import charts, data, i18n, ui
from medmkt_assets.lib.models.recommender_selection import OPTIMISTIC_BASELINE, ranking_split

PICK_MAX = 50  # patients offered per segment: enough to pick one, never a segment's size

lang, snap = ui.lang(), ui.snapshot()
names = data.Names.of(snap)
catalog = snap.table("marts_product_catalog").set_index("product_id")
summary = snap.table("marts_segment_summary").sort_values("segment_id")
st.title(ui.t("nav.offers"))
st.caption(ui.t("offers.intro"))

published = summary[~summary.suppressed.fillna(True).astype(bool)]
left, right = st.columns(2)
segment_id = left.selectbox(ui.t("offers.pick_segment"), published.segment_id.tolist(), index=None,
                            placeholder=ui.t("choose"),
                            format_func=dict(zip(published.segment_id,
                                                 published.segment_label.map(lambda v: i18n.segment_label(v, lang)))).get)
picked = None
if segment_id is not None:
    picked = right.selectbox(ui.t("offers.pick_patient"), data.segment_patients(snap, segment_id, PICK_MAX),
                             index=None, placeholder=ui.t("choose"),
                             help=ui.t("offers.pick_help", n=i18n.number(PICK_MAX, lang)))
typed = st.text_input(ui.t("offers.key"), max_chars=64).strip().lower()
key = typed or picked
if typed and not data.PSEUDONYM.match(typed):
    st.warning(ui.t("offers.bad_key"))
elif key:
    segment, recs = snap.patient(key)
    if segment is None and recs.empty:
        st.info(ui.t("offers.unknown"))
    else:
        st.markdown(ui.escape(ui.t("offers.segment", label=i18n.segment_label(segment, lang))))
        st.subheader(ui.t("offers.list"))
        recs = recs.assign(product=recs.product_id.map(lambda p: names.product(p, lang)),
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
ranked = ranking_split(evaluation)
if len(ranked):
    ndcg = next(c for c in ranked.columns if c.startswith("ndcg_at_"))
    scores = dict(zip(ranked.model, ranked[ndcg]))
    if champion in scores:
        st.markdown(ui.escape(ui.t("offers.serving", model=data.model_name(champion, lang),
                                   score=i18n.number(scores[champion], lang, 3))))
    if champion in scores and scores.get(OPTIMISTIC_BASELINE, 0) > scores[champion]:
        st.markdown(ui.escape(ui.t("offers.baseline", model=data.model_name(OPTIMISTIC_BASELINE, lang),
                                   score=i18n.number(scores[OPTIMISTIC_BASELINE], lang, 3))))
    short = {"role.served": ui.t("role.served"), "role.optimistic": ui.t("role.optimistic_short")}
    roles = data.recommender_roles(ranked, champion).map(short.get)
    ranked = ranked.assign(model_text=[f"{data.model_name(m, lang)} · {r}" if r else data.model_name(m, lang)
                                       for m, r in zip(ranked.model, roles)],
                           value_text=ranked[ndcg].map(lambda v: i18n.number(v, lang, 3)))
    ui.chart(charts.bars(ranked, ndcg, "model_text", data.metric_name(ndcg, lang), "",
                         tooltip=[ui.tip("model_text", "col.model"),
                                  alt.Tooltip("value_text:N", title=data.metric_name(ndcg, lang))],
                         value_format=".3f"))
elif champion:
    st.markdown(ui.escape(ui.t("offers.serving_plain", model=data.model_name(champion, lang))))
if len(evaluation):
    table = data.evaluation_table(evaluation, lang)
    table.insert(1, ui.t("col.role"), data.recommender_roles(evaluation, champion).map(ui.t).to_list())
    ui.show(table)
