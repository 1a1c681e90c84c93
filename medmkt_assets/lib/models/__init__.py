"""The analytics: from staged tables to features, profiles and every model the marts publish.

Features and profiles (`features`, `profiles`, `campaign_features`), segments (`segments`,
`segment_summary`), association rules (`rules`), recommenders (`recommenders`, `rec_metrics`,
`recommender_selection`), propensity, disease risk and uplift (`propensity`, `disease_risk`,
`campaign_models`, `targets`), campaign effects (`campaigns`), and the Spark versions of the
heavy kernels (`on_spark`). Transforms are SQL over a Session; models are plain functions.

May import: lib.engine, lib.privacy, lib.sources, lib.tracking.
"""
