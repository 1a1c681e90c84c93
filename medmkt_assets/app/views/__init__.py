"""Pages of the insight app, run by Streamlit as scripts (listed in Home.py)."""
