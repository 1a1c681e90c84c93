"""The recommender's rows in the warehouse: patients and products as small integer codes, what the
models are fitted from (`Histories`), and serving where the rows live on Spark.

On DuckDB every order line and every patient come to pandas (fast, and bounded by one machine's
memory). On Spark no patient-sized table reaches the driver: the candidates are compared on a
bounded sample of patients, the champion is fitted on item statistics counted in Spark
(`rec_statistics`), and each patient is served in the executors from their own rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from medmkt_assets.lib.models import recommender_selection as sel
from medmkt_assets.lib.models.rec_statistics import item_statistics
from medmkt_assets.lib.models.recommenders import ItemStatistics

# Patients and products travel to Python as small integer codes (temp tables map them back to
# patient_key and product_id): string ids would cost memory and time in every split, fit and list.
PATIENT_CODES_SQL = ("CREATE OR REPLACE TEMP TABLE _rec_patients AS SELECT p.patient_key, s.segment_label, "
                     "CAST(row_number() OVER (ORDER BY p.patient_key) AS INTEGER) AS user_id "
                     "FROM marts.patient_profiles p LEFT JOIN marts.patient_segments s USING (patient_key)")
PRODUCT_CODES_SQL = ("CREATE OR REPLACE TEMP TABLE _rec_products AS SELECT product_id, "
                     "CAST(row_number() OVER (ORDER BY product_id) AS INTEGER) AS item_id "
                     "FROM (SELECT product_id FROM staging.products UNION SELECT product_id FROM staging.orders) u")
ORDER_LINES_SQL = ("SELECT c.user_id, i.item_id, CAST(o.quantity AS DOUBLE) AS weight, o.ordered_at AS timestamp, "
                   "o.order_id, o.line_no FROM staging.orders o JOIN _rec_patients c USING (patient_key) "
                   "JOIN _rec_products i USING (product_id)")
# a total order: the seeded stratified split keeps row order, so the join's own order (the engine's
# choice) would change the evaluation between DuckDB and Spark
INTERACTIONS_SQL = ("SELECT user_id, item_id, weight, timestamp FROM ({lines}) l {where}"
                    "ORDER BY user_id, timestamp, order_id, line_no").format(lines=ORDER_LINES_SQL, where="{where}")
PRODUCTS_SQL = ("SELECT product_id, name, category, kind, rx_only, "
                "concat_ws(' ', name, replace(category, '_', ' '), kind, description) AS text FROM staging.products")


RECOMMENDATIONS_DDL = ("CREATE OR REPLACE TABLE marts.recommendations (patient_key VARCHAR, rank INTEGER, "
                       "product_id VARCHAR, score DOUBLE, model VARCHAR)")
SERVED_SQL = ("SELECT c.patient_key, f.rank, i.product_id, f.score, f.model "
              "FROM frame f JOIN _rec_patients c USING (user_id) JOIN _rec_products i USING (item_id)")
# On Spark: the segments the item statistics count users per item in, and each patient's rows for
# serving in the executors (a patient without orders: one row without an item).
GROUPS_SQL = "SELECT user_id, segment_label AS group_label FROM _rec_patients"
SERVE_ROWS_SQL = ("SELECT c.user_id, l.item_id, l.weight, l.timestamp, c.segment_label FROM _rec_patients c "
                  f"LEFT JOIN ({ORDER_LINES_SQL}) l USING (user_id)")
SERVED_SCHEMA = "user_id int, rank int, product_id int, score double, model string"
SERVED_VIEW = "_rec_served"
SERVE_GROUP_ROWS = 200_000  # rows per group the executors serve at once (bounds their memory)
SAMPLE_VIEW = "_rec_sample"


def fetch_frame(con, sql: str) -> pd.DataFrame:
    """A query's rows as a frame; on DuckDB through NumPy arrays (half the time of fetchdf's
    conversion for 20 M order lines)."""
    result = con.execute(sql)
    return pd.DataFrame(result.fetchnumpy()) if con.engine == "duckdb" else result.fetchdf()


@dataclass
class Histories:
    """What the recommenders are fitted from. On DuckDB every order line (`interactions`) and every
    patient come to pandas. On Spark only the candidates' training sample does (at most
    selection_users patients, the same ones as on DuckDB), and the champion is fitted on item
    statistics counted in Spark (`statistics`) and serves in the executors: no patient-sized table
    reaches the driver."""
    rows: pd.DataFrame                 # the candidates' training rows
    segments: pd.Series                # user_id -> segment label (category), of everyone or of the sample
    n_interactions: int
    n_patients: int
    patients: pd.DataFrame | None = None      # user_id, segment_label, patient_key of everyone (DuckDB)
    interactions: pd.DataFrame | None = None  # every order line (DuckDB)
    statistics: ItemStatistics | None = None  # of every order line (Spark)

    @classmethod
    def read(cls, con, selection_users: int, seed: int) -> "Histories":
        """The histories of the patients and products coded in _rec_patients and _rec_products."""
        if con.engine != "spark":
            interactions = fetch_frame(con, INTERACTIONS_SQL.format(where=""))
            patients = con.execute("SELECT user_id, segment_label, patient_key FROM _rec_patients "
                                   "ORDER BY user_id").fetchdf()
            rows = sel.training_rows(interactions, patients.user_id, selection_users, seed)
            return cls(rows, patients.set_index("user_id").segment_label.astype("category"), len(interactions),
                       len(patients), patients=patients, interactions=interactions)
        (n_patients,) = con.execute("SELECT count(*) FROM _rec_patients").fetchone()
        (n_interactions,) = con.execute(f"SELECT count(*) FROM ({ORDER_LINES_SQL}) l").fetchone()
        chosen, where = sel.sample_users(n_patients, selection_users, seed), ""
        if chosen is not None:
            spark = con.dataframe("SELECT 1 AS one").sparkSession
            con.register(SAMPLE_VIEW, spark.createDataFrame(pd.DataFrame({"user_id": chosen.astype("int32")})))
            where = f"WHERE user_id IN (SELECT user_id FROM {SAMPLE_VIEW}) "
        rows = fetch_frame(con, INTERACTIONS_SQL.format(where=where))
        segments = con.execute(f"SELECT user_id, segment_label FROM _rec_patients {where}ORDER BY user_id").fetchdf()
        return cls(rows, segments.set_index("user_id").segment_label.astype("category"), int(n_interactions),
                   int(n_patients), statistics=item_statistics(con, ORDER_LINES_SQL, GROUPS_SQL))


def serve_in_executors(con, server: sel.ServedRecommender) -> None:
    """marts.recommendations on Spark: every patient's rows grouped in the executors (SERVE_GROUP_ROWS
    a group) and served there (serve_rows), written by Spark in key order."""
    from medmkt_assets.lib.models import on_spark

    (rows,) = con.execute(f"SELECT count(*) FROM ({SERVE_ROWS_SQL}) r").fetchone()
    groups = max(1, -(-int(rows) // SERVE_GROUP_ROWS))
    con.register(SERVED_VIEW, on_spark.map_groups(con.dataframe(SERVE_ROWS_SQL), "user_id", groups,
                                                  server.serve_rows, SERVED_SCHEMA))
    con.execute("INSERT INTO marts.recommendations SELECT c.patient_key, f.rank, i.product_id, f.score, f.model "
                f"FROM {SERVED_VIEW} f JOIN _rec_patients c USING (user_id) JOIN _rec_products i "
                "ON f.product_id = i.item_id ORDER BY c.patient_key, f.rank")


