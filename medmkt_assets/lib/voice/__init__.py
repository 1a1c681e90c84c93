"""Patient voice: survey comments and search queries, de-identified before anything reads them.

deidentify (typed placeholders for the identifiers free text hides), text (tokens in Chinese and
English), topics, sentiment, drivers (what goes with higher or lower satisfaction and NPS) and
search (what patients search for), and sql (what the voice assets read and publish). Plain
functions: no Dagster, no warehouse.

May import: engine, privacy (small cells).
"""
