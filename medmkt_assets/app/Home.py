"""The insight app's frame: language switch, navigation to one page per question, snapshot check.

st.navigation runs before the snapshot check: once it has run, Streamlit ignores the pages/
folder's own discovery, so without a snapshot every page shows the same message.
"""
import streamlit as st

from medmkt_assets.app import ui

PAGES = ("segments", "demand", "rules", "offers", "campaigns", "audiences")
# Streamlit's "Press Enter to apply" under text inputs comes in English only: hidden.
STYLE = "<style>[data-testid='InputInstructions'] {display: none;}</style>"

st.set_page_config(page_title="medmkt insight · 洞察", layout="wide")
st.html(STYLE)
ui.choose_language()
st.sidebar.title(ui.t("app.title"))
navigation = st.navigation([st.Page(f"pages/{name}.py", title=ui.t(f"nav.{name}"), url_path=name,
                                    default=name == PAGES[0]) for name in PAGES])
snapshot = ui.snapshot()
ui.about(snapshot)
navigation.run()
