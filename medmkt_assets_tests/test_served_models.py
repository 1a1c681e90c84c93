"""Every registered champion, loaded from MLflow as a reviewer would, answers what the warehouse published."""
from __future__ import annotations

import duckdb
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from medmkt_assets.lib.models.campaign_models import with_target_share

SAMPLE = 150


def served_answers_match_the_warehouse(warehouse: str, tracking_uri: str) -> list[str]:
    """Load models:/<name>@champion for every registered model and compare its answers for a
    sample of patients with the published tables; returns the names checked."""
    mlflow.set_tracking_uri(tracking_uri)
    con = duckdb.connect(warehouse, read_only=True)
    features = con.execute("SELECT * FROM features.patient_features ORDER BY patient_key").fetchdf()
    sample = features.sample(min(SAMPLE, len(features)), random_state=1).reset_index(drop=True)
    keys = sample.patient_key.tolist()
    categories = dict(con.execute("SELECT campaign_id, target_category FROM staging.campaigns").fetchall())
    names = sorted(m.name for m in MlflowClient().search_registered_models())
    for name in names:
        model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
        inputs = model.metadata.get_input_schema().input_names()
        if name.startswith("medmkt-propensity-"):
            target = name.removeprefix("medmkt-propensity-").replace("risk-", "risk:", 1)
            frame = with_target_share(sample, categories.get(target), list(features.columns))
            served = np.asarray(model.predict(frame[inputs]))[:, 1]
            published = con.execute("SELECT patient_key, score FROM marts.propensity_scores WHERE target = ? "
                                    "AND score IS NOT NULL", [target]).fetchdf().set_index("patient_key").score
            scored = sample.patient_key.isin(published.index).to_numpy()
            assert scored.sum() > SAMPLE // 2, name
            np.testing.assert_allclose(served[scored], published.reindex(sample.patient_key[scored]), rtol=1e-9,
                                       err_msg=name)
        elif name == "medmkt-segmentation":
            served = np.asarray(model.predict(sample[inputs]))
            published = con.execute("SELECT patient_key, segment_id FROM marts.patient_segments").fetchdf()
            assert (served == published.set_index("patient_key").segment_id.reindex(keys).to_numpy()).all()
        elif name == "medmkt-recommender":
            served = model.predict(pd.DataFrame({"patient_key": keys}), params={"k": 10})
            published = con.execute("SELECT patient_key, rank, product_id, score, model FROM marts.recommendations "
                                    "WHERE patient_key IN (SELECT unnest(?)) ORDER BY patient_key, rank",
                                    [keys]).fetchdf()
            served = served[list(published.columns)].sort_values(["patient_key", "rank"]).reset_index(drop=True)
            pd.testing.assert_frame_equal(served, published, check_dtype=False)
        else:
            pytest.fail(f"no check for registered model {name}")
    return names


def test_every_registered_champion_serves_what_the_warehouse_published(demo_pipeline):
    names = served_answers_match_the_warehouse(str(demo_pipeline["warehouse"]),
                                               f"sqlite:///{demo_pipeline['root'] / 'mlflow' / 'mlflow.db'}")
    assert {"medmkt-recommender", "medmkt-segmentation", "medmkt-propensity-C007",
            "medmkt-propensity-risk-N18"} <= set(names)
