"""Market demand: orders, patients and revenue by month, region and category, from published cells only."""
import pandas as pd
import streamlit as st

from medmkt_assets.app import charts, data, i18n, ui

ROWS_SHOWN = 120

lang, snap = ui.lang(), ui.snapshot()
trends = snap.table("marts_demand_trends")
st.title(ui.t("nav.demand"))
st.caption(ui.t("demand.intro"))
if trends.empty:
    st.info(ui.t("demand.empty"))
    st.stop()

months = sorted(pd.to_datetime(trends.month).dt.date.unique())
regions = sorted(trends.region.unique(), key=lambda r: i18n.term(r, lang))
categories = sorted(trends.category.unique(), key=lambda c: i18n.term(c, lang))
left, right = st.columns([1, 2])
measure = left.radio(ui.t("demand.measure"), data.MEASURES, format_func=lambda m: ui.t(f"measure.{m}"),
                     horizontal=True)
period = right.select_slider(ui.t("demand.months"), months, value=(months[0], months[-1]),
                             format_func=lambda m: i18n.month(m, lang))
chosen_regions = left.multiselect(ui.t("demand.regions"), regions, default=regions,
                                  format_func=lambda r: i18n.term(r, lang), placeholder=ui.t("choose"))
chosen_categories = right.multiselect(ui.t("demand.categories"), categories, default=categories,
                                      format_func=lambda c: i18n.term(c, lang), placeholder=ui.t("choose"))
cells = data.demand_selection(trends, chosen_regions, chosen_categories, period)
if cells.empty:
    st.info(ui.t("demand.empty"))
    st.stop()
hidden = int(cells.suppressed.fillna(True).astype(bool).sum())
st.caption(ui.t("demand.hidden_cells", n=i18n.number(hidden, lang), total=i18n.number(len(cells), lang)))
fmt = {"revenue": i18n.money_whole, "orders": i18n.number, "patients": i18n.number}[measure]

st.subheader(ui.t("demand.trend"))
trend = data.demand_totals(cells, ["month", "category"], measure)
trend = trend.assign(month_text=trend.month.map(lambda m: i18n.month(m, lang)),
                     category_text=trend.category.map(lambda c: i18n.term(c, lang)),
                     value_text=trend[measure].map(lambda v: fmt(v, lang)))
ui.chart(charts.lines(trend, "month_text", [i18n.month(m, lang) for m in months], measure, "category_text",
                      ui.t("col.month"), ui.t(f"measure.{measure}"), ui.t("col.category"),
                      tooltip=[ui.tip("month_text", "col.month"), ui.tip("category_text", "col.category"),
                               ui.tip("value_text", f"measure.{measure}")]))

st.subheader(ui.t("demand.by_region"))
grid = data.demand_totals(cells, ["region", "category"], measure)
grid = grid.assign(category_text=grid.category.map(lambda c: i18n.term(c, lang)),
                   region_text=grid.region.map(lambda r: i18n.term(r, lang)),
                   value_text=grid[measure].map(lambda v: fmt(v, lang)))
ui.chart(charts.heatmap(grid, "category_text", "region_text", measure, "value_text", ui.t("col.category"),
                        ui.t("col.region"), ui.t(f"measure.{measure}"),
                        tooltip=[ui.tip("region_text", "col.region"), ui.tip("category_text", "col.category"),
                                 ui.tip("value_text", f"measure.{measure}")]))

st.subheader(ui.t("demand.cells"))
latest = cells.sort_values(["month", "region", "category"], ascending=[False, True, True]).head(ROWS_SHOWN)
st.caption(ui.t("demand.rows_shown", n=i18n.number(len(latest), lang), total=i18n.number(len(cells), lang)))
ui.table(latest, {"month": ("col.month", "month"), "region": ("col.region", "term"),
                  "category": ("col.category", "term"), "orders": ("col.orders", "int"),
                  "patients": ("col.patients", "count"), "revenue": ("col.revenue", "money")})
ui.hidden_note()
