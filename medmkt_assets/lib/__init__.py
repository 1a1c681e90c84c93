"""Pure library code: SQL builders and algorithms. Nothing here imports Dagster or medmkt_assets.defs.

Seven packages in layers. A module imports from its own package and from lower layers only
(medmkt_assets_tests/test_layout.py holds the rule):

    4  ops       data-quality suites, mart checks, the contract checker, alerts, the insight snapshot
    3  models    features, profiles, segments, rules, recommenders, propensity, risk, uplift, campaign effects
    3  voice     survey comments and search queries: de-identification, topics, sentiment, drivers, themes
    2  sources   the contract's source tables, reading files and exports, staging
    2  tracking  MLflow runs and registered models, the figures logged with them
    1  privacy   identifiers, pseudonyms, small-cell suppression, consent-aware audiences
    0  engine    the Session interface, SQL helpers, the Spark engine behind the same interface
"""

# Each package's layer: a module may import its own package or a package of a lower layer.
LAYERS = {"engine": 0, "privacy": 1, "sources": 2, "tracking": 2, "models": 3, "voice": 3, "ops": 4}
