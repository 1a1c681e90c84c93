"""The recommenders' item statistics of every history, aggregated in the warehouse (SQL).

On Spark no order line comes to the driver: the champion is fitted on these statistics (items x
items, groups x items: small) and serves every patient in the executors from that patient's own
rows (`ServedRecommender.serve_rows`). The queries are plain SQL over a Session, so DuckDB runs
them too and the tests hold them to the statistics `recommenders.Interactions` computes in pandas.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from medmkt_assets.lib.models.recommenders import ItemStatistics

KEPT = "_rec_kept"  # the rows a fit keeps (temp table)
# What `Interactions` keeps: both ids, and a weight that is missing (counts 1) or positive.
KEPT_SQL = (f"CREATE OR REPLACE TEMP TABLE {KEPT} AS SELECT user_id, item_id, timestamp, order_id, line_no "
            "FROM ({history}) h WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND coalesce(weight, 1) > 0")
# Items in the order pandas' factorize meets them in the rows ordered as the interactions are.
FIRST_SEEN_SQL = ("SELECT item_id FROM (SELECT item_id, user_id, timestamp, order_id, line_no, row_number() OVER "
                  "(PARTITION BY item_id ORDER BY user_id, timestamp, order_id, line_no) AS n "
                  f"FROM {KEPT}) f WHERE n = 1 ORDER BY user_id, timestamp, order_id, line_no")
TOTALS_SQL = f"SELECT count(DISTINCT user_id) AS users, max(timestamp) AS latest FROM {KEPT}"
COOCCURRENCE_SQL = (f"WITH pairs AS (SELECT DISTINCT user_id, item_id FROM {KEPT}) "
                    "SELECT a.item_id AS i, b.item_id AS j, count(*) AS users "
                    "FROM pairs a JOIN pairs b ON a.user_id = b.user_id GROUP BY a.item_id, b.item_id")
GROUP_USERS_SQL = ("SELECT g.group_label, k.item_id, count(DISTINCT k.user_id) AS users "
                   f"FROM {KEPT} k JOIN ({{groups}}) g ON k.user_id = g.user_id "
                   "WHERE g.group_label IS NOT NULL GROUP BY g.group_label, k.item_id")


def item_statistics(con, history_sql: str, groups_sql: str | None = None) -> ItemStatistics:
    """ItemStatistics of `history_sql`'s rows (user_id, item_id, weight, timestamp, order_id, line_no;
    the order the interactions are read in is user_id, timestamp, order_id, line_no), with the users
    per item of each group of `groups_sql` (user_id, group_label). Only item-sized results leave the
    warehouse."""
    con.execute(KEPT_SQL.format(history=history_sql))
    items = pd.Index(con.execute(FIRST_SEEN_SQL).fetchdf().item_id)
    totals = con.execute(TOTALS_SQL).fetchdf()
    pairs = con.execute(COOCCURRENCE_SQL).fetchdf()
    cooccurrence = np.zeros((len(items), len(items)))
    cooccurrence[items.get_indexer(pairs.i), items.get_indexer(pairs.j)] = pairs.users.to_numpy(dtype=float)
    groups, group_users = pd.Index([]), np.zeros((0, len(items)))
    if groups_sql is not None:
        counts = con.execute(GROUP_USERS_SQL.format(groups=groups_sql)).fetchdf()
        groups = pd.Index(sorted(counts.group_label.unique()))
        group_users = np.zeros((len(groups), len(items)))
        group_users[groups.get_indexer(counts.group_label), items.get_indexer(counts.item_id)] = \
            counts.users.to_numpy(dtype=float)
    con.execute(f"DROP TABLE {KEPT}")
    latest = totals.latest.iloc[0] if len(items) else None
    return ItemStatistics(items, int(totals.users.iloc[0]), cooccurrence, groups, group_users,
                          None if pd.isna(latest) else pd.Timestamp(latest))
