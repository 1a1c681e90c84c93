"""The insight app's frame: language switch, navigation to one page per question, snapshot check.

st.navigation runs before the snapshot check: once it has run, Streamlit ignores the pages/
folder's own discovery, so without a snapshot every page shows the same message.
"""
import os

import streamlit as st

from medmkt_assets.app import ui
from medmkt_assets.app.access import LOGIN_FLAG, is_loopback

PAGES = ("segments", "demand", "rules", "offers", "campaigns", "audiences")
# Streamlit's "Press Enter to apply" under text inputs comes in English only: hidden.
STYLE = "<style>[data-testid='InputInstructions'] {display: none;}</style>"

st.set_page_config(page_title="medmkt insight · 洞察", layout="wide")
st.html(STYLE)
# Beyond loopback nobody sees a page before logging in (app/access.py; `python -m medmkt_assets.app`
# refuses to start there without a login; this gate also holds for a bare `streamlit run`).
if os.environ.get(LOGIN_FLAG) == "1" or not is_loopback(st.get_option("server.address") or "127.0.0.1"):
    if "auth" not in st.secrets:
        st.error("This app listens beyond loopback without a login configured: set MEDMKT_APP_OIDC_* "
                 "and start it with `python -m medmkt_assets.app`.")
        st.stop()
    if not st.user.is_logged_in:
        st.title("medmkt insight · 洞察")
        st.button("Log in · 登录", on_click=st.login)
        st.stop()
    st.sidebar.button("Log out · 退出", on_click=st.logout)
ui.choose_language()
st.sidebar.title(ui.t("app.title"))
navigation = st.navigation([st.Page(f"pages/{name}.py", title=ui.t(f"nav.{name}"), url_path=name,
                                    default=name == PAGES[0]) for name in PAGES])
snapshot = ui.snapshot()
ui.about(snapshot)
navigation.run()
