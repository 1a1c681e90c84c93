"""The insight app's frame: language switch, navigation to one page per question, snapshot check.

Every URL runs this script first (the pages live in views/, not pages/, so Streamlit never
falls back to its old folder-based navigation): `/campaigns?lang=zh` opened as the first
request to a fresh server gets the language switch, the translated page list and its page.
`/` is a hidden page that forwards to `/segments`, so each page has its own URL (Streamlit
serves the default page at `/` only). st.navigation runs before the snapshot check, so without
a snapshot every page shows the same message.
"""
import os

import streamlit as st

from medmkt_assets.app import ui
from medmkt_assets.app.access import LOGIN_FLAG, is_loopback

PAGES = ("segments", "demand", "rules", "offers", "campaigns", "audiences", "voice")
# Streamlit's own English-only furniture, hidden: "Press Enter to apply" under text inputs, and the
# chart toolbar (fullscreen, and "Show data" with the chart's internal column names; every chart
# has a translated table beside it). The app menu is off (`client.toolbarMode minimal`, no menu_items).
STYLE = ("<style>[data-testid='InputInstructions'], [data-testid='stElementToolbar'] {display: none;}"
         "</style>")

st.set_page_config(page_title="medmkt insight · 洞察", layout="wide", menu_items={
    "Get help": None, "Report a bug": None, "About": None})
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
pages = {name: st.Page(f"views/{name}.py", title=ui.t(f"nav.{name}"), url_path=name) for name in PAGES}


def start() -> None:
    """`/`: the first page, under its own URL, in the language asked for."""
    st.switch_page(pages[PAGES[0]], query_params={"lang": ui.lang()})


navigation = st.navigation([st.Page(start, title=ui.t("app.title"), url_path="start", default=True,
                                    visibility="hidden"), *pages.values()])
snapshot = ui.snapshot()
ui.about(snapshot)
navigation.run()
