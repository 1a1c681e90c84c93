"""Streamlit glue the pages share: the chosen language, the snapshot, translated tables and notes."""
from __future__ import annotations

import re

import altair as alt
import pandas as pd
import streamlit as st

from medmkt_assets.app import data, i18n
from medmkt_assets.settings import Settings

# st.table renders cells as Markdown: data text (product names, say) is shown as written.
MARKDOWN = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~$])")


def lang() -> str:
    return st.session_state.get("lang", "en")


def t(key: str, **values) -> str:
    return i18n.t(key, lang(), **values)


def choose_language() -> str:
    """The sidebar switch, mirrored in the URL (?lang=zh) so a link opens in the reader's language."""
    if "lang" not in st.session_state:
        asked = st.query_params.get("lang", "en")
        st.session_state.lang = asked if asked in i18n.LANGUAGES else "en"
    st.sidebar.radio(t("app.language"), list(i18n.LANGUAGES), format_func=i18n.LANGUAGES.get, key="lang",
                     horizontal=True)
    st.query_params["lang"] = st.session_state.lang
    return st.session_state.lang


def snapshot() -> data.Snapshot:
    """The published snapshot; without one, a message in both languages and nothing else."""
    snap = data.Snapshot.from_settings()
    if not snap.exists():
        title, body = i18n.missing_snapshot(str(snap.path))
        st.error(f"**{title}**\n\n{body}")
        st.stop()
    return snap


def about(snap: data.Snapshot) -> None:
    """When the data was published, by which run, and what the snapshot holds; a link to the Data
    Docs (MEDMKT_QUALITY_DOCS_URL) (sidebar)."""
    docs = Settings.from_env().quality_docs_url
    st.sidebar.link_button(t("app.data_docs"), docs, help=t("app.data_docs_help", url=docs))
    info = snap.table("snapshot_info")
    if info.empty:
        return
    st.sidebar.caption(t("app.published", when=i18n.timestamp(info.published_at.iloc[0], lang())))
    st.sidebar.caption(t("app.run", run=str(info.run_id.iloc[0])[:8]))
    with st.sidebar.expander(t("app.snapshot_tables")):
        table(info, {"table_name": ("col.table_name", "text"), "row_count": ("col.rows", "int")})


def escape(text: str) -> str:
    return MARKDOWN.sub(r"\\\1", text)


def table(frame: pd.DataFrame, columns: dict[str, tuple[str, str]]) -> None:
    """A static table with translated headers and locale-formatted cells (hidden cells marked)."""
    show(data.format_table(frame, columns, lang()))


def show(text: pd.DataFrame) -> None:
    """A table already formatted as text, shown as written."""
    st.table(text.map(escape).rename(columns=escape), hide_index=True)


def hidden_note() -> None:
    st.caption(t("note.hidden"))


def chart(spec, height: int | str = "content") -> None:
    st.altair_chart(spec, width="stretch", height=height)


def tip(field: str, key: str) -> alt.Tooltip:
    """A tooltip line: a (pre-formatted) text field under its translated title."""
    return alt.Tooltip(f"{field}:N", title=t(key))
