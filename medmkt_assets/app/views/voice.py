"""Patient voice: what patients write in surveys (topics, their trend, de-identified examples),
what goes with higher or lower satisfaction and NPS, NPS by segment and channel, and what they
search for. Each part says so when the data has nothing for it (a source without surveys or searches)."""
import pandas as pd
import streamlit as st

from medmkt_assets.app import charts, data, i18n, ui
from medmkt_assets.lib.ops.insight import VOICE_COLUMNS

# Sentiment colours: positive, neutral, negative.
SENTIMENT_COLOURS = ["#54a24b", "#bab0ac", "#e45756"]
ROWS_SHOWN = 120  # search cells listed, latest first (as on the demand page)

lang, snap = ui.lang(), ui.snapshot()
voice = {name: snap.optional_table(f"marts_{name}", columns) for name, columns in VOICE_COLUMNS.items()}
topics, trends, examples = voice["voice_topics"], voice["voice_topic_trends"], voice["voice_examples"]
st.title(ui.t("nav.voice"))
st.caption(ui.t("voice.intro"))


def sentiment_check(quality: pd.DataFrame) -> None:
    """(7) how far the sentiment read from the comments agrees with the score each patient gave."""
    accuracy, kappa = data.quality_value(quality, "sentiment_accuracy"), data.quality_value(quality, *data.KAPPA)
    if accuracy is not None and kappa is not None:
        st.caption(ui.t("voice.sentiment_check", share=i18n.percent(accuracy, lang, 0),
                        kappa=i18n.number(kappa, lang, 2)))


def quality_section(quality: pd.DataFrame) -> None:
    """(7) every quality figure of the comment analysis (the mart's, named where the app knows them)."""
    if len(quality):
        st.subheader(ui.t("voice.quality"))
        ui.show(data.quality_rows(quality, lang))


def topic_section() -> None:
    """(1) topics with their share, authors, satisfaction and sentiment mix; (2) one topic's trend;
    (3) its de-identified examples, where they may be shown."""
    st.subheader(ui.t("voice.topics"))
    if topics.empty:
        st.info(ui.t("voice.no_comments"))
        return
    shown = topics.sort_values(["share", "topic_id"], ascending=[False, True]).assign(
        label_text=lambda f: [data.topic_label(a, b, lang) for a, b in zip(f.label, f.label_zh)],
        terms_text=lambda f: f.top_terms.map(lambda v: data.topic_terms(v, lang)),
        suppressed=lambda f: f.authors.isna())
    mix = shown.melt(id_vars=["label_text"], value_vars=[f"{s}_share" for s in data.SENTIMENTS],
                     var_name="part", value_name="value").dropna(subset=["value"])
    parts = [ui.t(f"sentiment.{s}") for s in data.SENTIMENTS]
    mix = mix.assign(part_text=mix.part.map(lambda p: ui.t(f"sentiment.{p.removesuffix('_share')}")),
                     value_text=mix.value.map(lambda v: i18n.percent(v, lang)))
    if len(mix):
        ui.chart(charts.stacked_bars(mix, "label_text", "part_text", parts, "value", ui.t("col.topic"),
                                     ui.t("voice.mix_axis"), ui.t("col.sentiment"),
                                     tooltip=[ui.tip("label_text", "col.topic"), ui.tip("part_text", "col.sentiment"),
                                              ui.tip("value_text", "col.share")], colours=SENTIMENT_COLOURS))
    ui.table(shown, {"label_text": ("col.topic", "text"), "terms_text": ("col.top_terms", "text"),
                     "share": ("col.share_of_comments", "percent"), "authors": ("col.authors", "count"),
                     "avg_satisfaction": ("col.satisfaction", "decimal2"),
                     **{f"{s}_share": (f"col.{s}", "percent") for s in data.SENTIMENTS}})

    names = dict(zip(shown.topic_id, shown.label_text))
    topic = st.selectbox(ui.t("voice.pick_topic"), list(names), format_func=names.get)
    st.subheader(ui.t("voice.trend", topic=names[topic]))
    mine = trends[trends.topic_id == topic].sort_values("month")
    mine = mine.assign(suppressed=mine.share.isna() | mine.authors.isna(),
                       month_text=mine.month.map(lambda m: i18n.month(m, lang)))
    line = mine[mine.share.notna()].assign(topic_text=names[topic],
                                           share_text=lambda f: f.share.map(lambda v: i18n.percent(v, lang)))
    if len(line):
        ui.chart(charts.lines(line, "month_text", mine.month_text.tolist(), "share", "topic_text", ui.t("col.month"),
                              ui.t("col.share_of_month"), ui.t("col.topic"), y_format=".0%", every_x=True,
                              tooltip=[ui.tip("month_text", "col.month"), ui.tip("share_text", "col.share_of_month")]))
    if mine.empty:
        st.info(ui.t("voice.no_trend"))
    else:
        ui.table(mine, {"month": ("col.month", "month"), "comments": ("col.comments", "count"),
                        "authors": ("col.authors", "count"), "share": ("col.share_of_month", "percent"),
                        "avg_satisfaction": ("col.satisfaction", "decimal2")})

    st.subheader(ui.t("voice.examples", topic=names[topic]))
    found = data.topic_examples(topics, examples, topic)
    if found is None:
        st.info(ui.t("voice.examples_hidden"))
    elif found.empty:
        st.info(ui.t("voice.no_examples"))
    else:
        st.caption(ui.t("voice.deidentified"))
        found = found.assign(language_text=found.language.map(lambda v: ui.t(f"language.{v}")
                                                              if v in i18n.LANGUAGES else str(v)),
                             sentiment_text=found.sentiment.map(lambda v: ui.t(f"sentiment.{v}")
                                                                if v in data.SENTIMENTS else str(v)))
        ui.table(found, {"comment": ("col.comment", "text"), "language_text": ("col.comment_language", "text"),
                         "sentiment_text": ("col.sentiment", "text"), "satisfaction": ("col.satisfaction", "int")})


def drivers_section(drivers: pd.DataFrame) -> None:
    """(4) what goes with higher or lower satisfaction and NPS, each level against its reference."""
    st.subheader(ui.t("voice.drivers"))
    st.caption(ui.t("voice.drivers_intro"))
    if drivers.empty:
        st.info(ui.t("voice.no_survey"))
        return
    catalog = snap.table("marts_campaign_catalog")
    campaigns = dict(zip(catalog.campaign_id, catalog.name))
    for outcome in ("satisfaction", "nps"):
        rows = data.driver_rows(drivers, outcome, lang, campaigns)
        st.markdown(f"**{ui.t(f'outcome.{outcome}')}**")
        if rows.empty:
            st.info(ui.t("voice.no_drivers"))
            continue
        rows = rows.assign(
            factor_text=rows.factor.map(lambda f: ui.t(f"factor.{f}") if f in data.DRIVER_FACTORS else str(f)),
            compared=[ui.t("voice.compared_with", reference=r) for r in rows.reference_text],
            clear_text=[("–" if c is None else ui.t("voice.clear") if c else ui.t("voice.not_clear"))
                        for c in rows.clear])
        plotted = rows[~rows.suppressed].assign(
            row_label=lambda f: [f"{a} · {b}" for a, b in zip(f.factor_text, f.level_text)])
        if len(plotted):
            ui.chart(charts.forest(plotted, "row_label", "effect", "ci_low", "ci_high", ui.t("col.level"),
                                   ui.t(f"voice.effect_axis.{outcome}"), x_format="+.2f", colour="clear_text",
                                   colour_title=ui.t("col.clear"),
                                   colour_order=[ui.t("voice.clear"), ui.t("voice.not_clear")],
                                   tooltip=[ui.tip("row_label", "col.level"), ui.tip("compared", "col.reference"),
                                            ui.tip("estimate_text", "col.effect_ci")]))
        ui.table(rows, {"factor_text": ("col.factor", "text"), "level_text": ("col.level", "text"),
                        "compared": ("col.reference", "text"), "respondents": ("col.respondents", "count"),
                        "estimate_text": ("col.effect_ci", "text"), "clear_text": ("col.clear", "text"),
                        "p_value": ("col.p_value", "decimal3")})


def nps_section(summary: pd.DataFrame) -> None:
    """(5) NPS overall, by segment and by channel, with intervals; suppressed cells hidden."""
    st.subheader(ui.t("voice.nps"))
    st.caption(ui.t("voice.nps_intro"))
    if summary.empty:
        st.info(ui.t("voice.no_survey"))
        return
    for dimension in ("overall", "segment", "channel"):
        rows = data.nps_rows(summary, dimension, lang)
        if rows.empty:
            continue
        if dimension != "overall":
            st.markdown(f"**{ui.t(f'voice.nps_by.{dimension}')}**")
            plotted = rows[rows.nps.notna() & rows.nps_ci_low.notna()]
            if len(plotted):
                ui.chart(charts.forest(plotted, "level_text", "nps", "nps_ci_low", "nps_ci_high",
                                       ui.t(f"factor.{dimension}"), ui.t("col.nps"), x_format="+.0f",
                                       tooltip=[ui.tip("level_text", f"factor.{dimension}"),
                                                ui.tip("nps_text", "col.nps"), ui.tip("ci_text", "col.ci")]))
        ui.table(rows, {"level_text": (f"factor.{dimension}" if dimension != "overall" else "col.level", "text"),
                        "respondents": ("col.respondents", "count"),
                        "promoters_share": ("col.promoters", "percent"), "passives_share": ("col.passives", "percent"),
                        "detractors_share": ("col.detractors", "percent"), "nps_text": ("col.nps", "text"),
                        "ci_text": ("col.ci", "text")})


def search_section(themes: pd.DataFrame, terms: pd.DataFrame) -> None:
    """(6) what patients search for, by month and region: a demand signal beside the orders."""
    st.subheader(ui.t("voice.searches"))
    st.caption(ui.t("voice.searches_intro", demand=ui.t("nav.demand")))
    if themes.empty:
        st.info(ui.t("voice.no_searches"))
        return
    regions = sorted(themes.region.dropna().unique(), key=lambda r: i18n.term(r, lang))
    chosen = st.multiselect(ui.t("demand.regions"), regions, default=regions, key="voice_regions",
                            format_func=lambda r: i18n.term(r, lang), placeholder=ui.t("choose"))
    cells = data.search_selection(themes, chosen)
    if cells.empty:
        st.info(ui.t("voice.no_searches"))
        return
    months = sorted(pd.to_datetime(cells.month).dt.date.unique())
    st.caption(ui.t("demand.hidden_cells", n=i18n.number(int(cells.suppressed.sum()), lang),
                    total=i18n.number(len(cells), lang)))
    totals = data.demand_totals(cells, ["month", "theme"], "searches")
    totals = totals.assign(month_text=totals.month.map(lambda m: i18n.month(m, lang)),
                           theme_text=totals.theme.map(lambda v: i18n.term(v, lang)),
                           value_text=totals.searches.map(lambda v: i18n.number(v, lang)))
    if len(totals):
        ui.chart(charts.lines(totals, "month_text", [i18n.month(m, lang) for m in months], "searches", "theme_text",
                              ui.t("col.month"), ui.t("col.searches"), ui.t("col.theme"),
                              tooltip=[ui.tip("month_text", "col.month"), ui.tip("theme_text", "col.theme"),
                                       ui.tip("value_text", "col.searches")]))
    latest = cells.sort_values(["month", "region", "theme"], ascending=[False, True, True]).head(ROWS_SHOWN)
    st.caption(ui.t("demand.rows_shown", n=i18n.number(len(latest), lang), total=i18n.number(len(cells), lang)))
    ui.table(latest, {"month": ("col.month", "month"), "region": ("col.region", "term"),
                      "theme": ("col.theme", "term"), "searches": ("col.searches", "int"),
                      "searchers": ("col.searchers", "count")})
    if len(terms):
        st.markdown(f"**{ui.t('voice.search_terms')}**")
        top = terms.sort_values(["theme", "searches", "term"], ascending=[True, False, True]).groupby("theme").head(5)
        ui.table(top, {"theme": ("col.theme", "term"), "term": ("col.term", "text"),
                       "searches": ("col.searches", "int")})


sentiment_check(voice["voice_quality"])
topic_section()
drivers_section(voice["satisfaction_drivers"])
nps_section(voice["nps_summary"])
search_section(voice["search_themes"], voice["search_theme_terms"])
quality_section(voice["voice_quality"])
ui.hidden_note()
