"""What goes together: association rules with product names, as a table, a scatter and a network."""
import pandas as pd
import streamlit as st

from medmkt_assets.app import charts, data, i18n, ui

SCATTER_MAX = 2000   # rules drawn in the scatter (highest lift first)
NETWORK_RULES = 15   # rules drawn as arrows
NETWORK_HEIGHT = 480

lang, snap = ui.lang(), ui.snapshot()
rules, names = snap.table("marts_association_rules"), data.Names.of(snap)
st.title(ui.t("nav.rules"))
st.caption(ui.t("rules.intro"))
if rules.empty:
    st.info(ui.t("rules.empty"))
    st.stop()

scopes = [s for s in ("basket", "patient") if (rules.scope == s).any()]
top, bottom = st.columns(2), st.columns(2)
scope = top[0].radio(ui.t("rules.scope"), scopes, format_func=lambda s: ui.t(f"scope.{s}"), horizontal=True)
products = data.rule_products(rules, scope)
product = top[1].selectbox(ui.t("rules.product"), [None, *products],
                           format_func=lambda p: ui.t("rules.any_product") if p is None else names.item(p, lang))
in_scope = rules[rules.scope == scope]
min_lift = bottom[0].slider(ui.t("rules.min_lift"), 1.0, max(float(in_scope.lift.max()), 1.1), 1.0, step=0.1)
min_confidence = bottom[1].slider(ui.t("rules.min_confidence"), 0.0, 1.0, 0.0, step=0.05)
chosen = data.filter_rules(rules, scope, min_lift, min_confidence, product)
st.metric(ui.t("rules.count"), i18n.number(len(chosen), lang))
if chosen.empty:
    st.info(ui.t("rules.empty"))
    st.stop()

chosen = chosen.assign(**{
    "if_text": chosen.antecedents.map(lambda a: names.items(a, lang)),
    "then_text": chosen.consequents.map(lambda c: names.items(c, lang)),
    "support_text": chosen.support.map(lambda v: i18n.percent(v, lang, 2)),
    "confidence_text": chosen.confidence.map(lambda v: i18n.percent(v, lang)),
    "lift_text": chosen.lift.map(lambda v: i18n.number(v, lang, 2)),
})
tooltip = [ui.tip("if_text", "col.if"), ui.tip("then_text", "col.then"), ui.tip("support_text", "col.support"),
           ui.tip("confidence_text", "col.confidence"), ui.tip("lift_text", "col.lift")]
left, right = st.columns(2)
with left:
    st.subheader(ui.t("rules.scatter"))
    ui.chart(charts.scatter(chosen.head(SCATTER_MAX), "support", "confidence", "lift", ui.t("col.support"),
                            ui.t("col.confidence"), ui.t("col.lift"), tooltip))
    if len(chosen) > SCATTER_MAX:
        st.caption(ui.t("rules.capped", n=i18n.number(SCATTER_MAX, lang)))
with right:
    st.subheader(ui.t("rules.network"))
    strongest = chosen.head(NETWORK_RULES)
    pairs = pd.DataFrame([{"source": names.item(a, lang), "target": names.item(c, lang), "weight": r.lift,
                           "if_text": r.if_text, "then_text": r.then_text, "support_text": r.support_text,
                           "confidence_text": r.confidence_text, "lift_text": r.lift_text}
                          for r in strongest.itertuples() for a in r.antecedents for c in r.consequents])
    ui.chart(charts.network(pairs, ui.t("col.lift"), tooltip), height=NETWORK_HEIGHT)
    st.caption(ui.t("rules.network_help", n=i18n.number(len(strongest), lang)))

rows = st.selectbox(ui.t("rules.rows"), (25, 50, 100, 200), format_func=lambda n: i18n.number(n, lang))
ui.table(chosen.head(rows), {
    "if_text": ("col.if", "text"), "then_text": ("col.then", "text"), "support": ("col.support", "percent2"),
    "confidence": ("col.confidence", "percent"), "lift": ("col.lift", "decimal2"),
    "support_count": (f"col.count_{scope}", "count"),
})
ui.hidden_note()
