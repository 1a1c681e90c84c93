"""Pages of the insight app, run by Streamlit as scripts (listed in Home.py). Not `pages/`: a folder of that
name beside the entry script puts a fresh server in Streamlit's old multipage mode until someone opens `/`."""
