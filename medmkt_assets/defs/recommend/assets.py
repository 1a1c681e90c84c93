"""marts.recommendations and marts.recommendation_evaluation (issue 7)."""
import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from mlflow import log_metrics, log_params, set_tags
from pydantic import Field

from medmkt_assets.defs.resources import MlflowTracker
from medmkt_assets.defs.warehouse import REFRESH_WHEN_INPUTS_CHANGE, WAREHOUSE_POOL, row_count, transaction
from medmkt_assets.lib import tracking
from medmkt_assets.lib.rec_metrics import chronological_split, evaluate, item_reach, stratified_split
from medmkt_assets.lib.recommenders import (
    EASE, ContentBased, Hybrid, ItemKNN, Popularity, Recommender, apply_business_rules,
)

REGISTERED_NAME = "medmkt-recommender"
# Patients travel to Python as small integer codes (a temp table maps them back to
# patient_key in SQL): string keys would cost memory and time in every split and fit.
PATIENT_CODES_SQL = ("CREATE OR REPLACE TEMP TABLE _rec_patients AS SELECT p.patient_key, s.segment_label, "
                     "CAST(row_number() OVER (ORDER BY p.patient_key) AS INTEGER) AS user_id "
                     "FROM marts.patient_profiles p LEFT JOIN marts.patient_segments s USING (patient_key)")
INTERACTIONS_SQL = ("SELECT c.user_id, o.product_id AS item_id, CAST(o.quantity AS DOUBLE) AS weight, "
                    "o.ordered_at AS timestamp FROM staging.orders o JOIN _rec_patients c USING (patient_key)")
PRODUCTS_SQL = ("SELECT product_id AS item_id, name, category, kind, rx_only, "
                "concat_ws(' ', name, replace(category, '_', ' '), kind, description) AS text FROM staging.products")


class RecommenderConfig(dg.Config):
    k: int = Field(default=10, description="Recommendations per patient.")
    holdout_days: int = Field(default=90, description="Chronological holdout: the last N days of orders.")
    split_ratio: float = Field(default=0.75, description="Stratified split: share of each patient's items in train.")
    seed: int = Field(default=42, description="Seed of the stratified split.")
    ease_lambdas: list[float] = Field(default=[50.0, 200.0, 1000.0], description="EASE L2 penalties tried.")
    half_life_days: float = Field(default=180.0, description="Half-life of the time-decayed item-item model.")
    exclude_rx_only: bool = Field(default=True, description="Never recommend prescription-only products.")
    exclude_seen: bool = Field(default=True, description="Leave out products the patient already bought.")
    one_time_kinds: list[str] = Field(default=["service", "test"],
                                      description="Kinds bought once (excluded again when exclude_seen is off).")
    max_per_category: int = Field(default=4, description="Most products of one category in a list (diversity).")
    new_item_slots: int = Field(default=1, description="Slots for never-bought products picked by content.")
    eval_users: int = Field(default=20_000, description=(
        "Test users sampled for evaluation (metrics are means over users; a sample keeps the cost flat at scale)."))
    selection_users: int = Field(default=200_000, description=(
        "Patients whose history the candidate models are fitted and compared on (all when fewer): item-item "
        "statistics from 200,000 patients rank models as all would, at a fifth of the cost per million. "
        "The champion is then refitted on everyone."))
    serve_batch: int = Field(default=100_000, description="Patients scored and written per batch (bounds memory).")


OPTIMISTIC_BASELINE = "popularity_by_segment"


def _candidates(config: RecommenderConfig, item_text: pd.Series, segments: pd.Series) -> list[Recommender]:
    """Every model fitted and evaluated on each run; the two popularity baselines come first."""
    return [Popularity(), Popularity(by=segments), ItemKNN("cosine"), ItemKNN("jaccard"), ItemKNN("lift"),
            ItemKNN("cosine", half_life_days=config.half_life_days), ContentBased(item_text),
            *[EASE(lambda_=lam) for lam in config.ease_lambdas]]


def _label(model: Recommender) -> str:
    return f"ease_l{model.lambda_:g}" if isinstance(model, EASE) else model.name


@dg.asset(
    key=["marts", "recommendations"], group_name="recommend", kinds={"duckdb", "mlflow"}, pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=[dg.AssetKey(["staging", "orders"]), dg.AssetKey(["staging", "products"]),
          dg.AssetKey(["marts", "patient_profiles"]), dg.AssetKey(["marts", "patient_segments"])],
)
def recommendations(context: dg.AssetExecutionContext, config: RecommenderConfig, warehouse: DuckDBResource,
                    mlflow: MlflowTracker) -> dg.MaterializeResult:
    """Every model evaluated on a chronological holdout and a stratified split; the champion (NDCG@10) lists top-k for every patient."""
    with warehouse.get_connection() as con:
        con.execute(PATIENT_CODES_SQL)
        interactions = con.execute(INTERACTIONS_SQL).fetchdf()
        products = con.execute(PRODUCTS_SQL).fetchdf()
        patients = con.execute("SELECT user_id, segment_label FROM _rec_patients ORDER BY user_id").fetchdf()
    item_text = products.set_index("item_id").text
    groups = patients.set_index("user_id").segment_label
    selection = interactions
    if patients.user_id.size > config.selection_users:
        chosen = patients.user_id.sample(config.selection_users, random_state=config.seed)
        selection = interactions[interactions.user_id.isin(chosen)]
        context.log.info("Models compared on %d of %d patients' histories.", config.selection_users, len(patients))
    splits = {"holdout": chronological_split(selection, config.holdout_days),
              "stratified": stratified_split(selection, config.split_ratio, config.seed)}
    reach = {split: item_reach(train) for split, (train, _) in splits.items()}
    rows, runs = [], {}
    for model in _candidates(config, item_text, groups):
        label = _label(model)
        metrics = {}
        for split, (train, test) in splits.items():
            if test.empty:
                continue
            fitted = model.fit(train, items=pd.Index(products.item_id))
            users = pd.Series(test.user_id.unique())
            if len(users) > config.eval_users:
                users = users.sample(config.eval_users, random_state=config.seed)
                test = test[test.user_id.isin(users)]
            recs = fitted.recommend(users, k=config.k)
            scores = evaluate(recs, test, train, len(products), k=config.k, reach=reach[split])
            metrics.update({(k if split == "holdout" else f"{split}_{k}"): v for k, v in scores.items()})
            rows.append({"model": label, "split": split, **scores})
        with mlflow.start_run(context, "medmkt-recommenders", label, tags={"model_family": model.name}) as run:
            log_params({"model": label, "k": config.k, "holdout_days": config.holdout_days,
                        "split_ratio": config.split_ratio, "seed": config.seed,
                        "interactions": len(interactions), "products": len(products),
                        "selection_users": min(config.selection_users, len(patients))})
            log_metrics(metrics)
            runs[label] = run
    evaluation = pd.DataFrame(rows, columns=["model", "split", *evaluate(
        pd.DataFrame(columns=["user_id", "item_id", "rank"]), pd.DataFrame(columns=["user_id", "item_id"]),
        pd.DataFrame(columns=["user_id", "item_id"]), 0, k=config.k)])
    if evaluation.empty:
        context.log.warning("Too little order history to hold any out: models are not evaluated; "
                            "EASE (λ=200) serves the lists.")
    holdout = evaluation[evaluation.split == "holdout"]
    if holdout.empty:  # too little history for a holdout: rank on the stratified split
        holdout = evaluation[evaluation.split == "stratified"]
    ndcg = f"ndcg_at_{config.k}"
    # Segment popularity is a reported baseline, never the champion: segments are fitted on
    # every order, the held-out ones included, so its holdout score is optimistic.
    eligible = holdout[holdout.model != OPTIMISTIC_BASELINE]
    champion_label = eligible.sort_values(ndcg, ascending=False).model.iloc[0] if len(eligible) else "ease_l200"
    champion = next(m for m in _candidates(config, item_text, groups) if _label(m) == champion_label)
    champion.fit(interactions, items=pd.Index(products.item_id))

    popularity = Popularity(by=groups).fit(interactions, items=pd.Index(products.item_id))
    content = ContentBased(item_text).fit(interactions)
    allowed = products[~products.rx_only.fillna(False)].item_id if config.exclude_rx_only else products.item_id
    if allowed.empty:
        context.log.warning("Every product is prescription-only: the rx_only rule is not applied.")
        allowed = products.item_id
    policy = Hybrid(champion, popularity, content, new_item_slots=config.new_item_slots)
    bought = interactions[["user_id", "item_id"]] if not config.exclude_seen else None
    served = pd.Series(dtype="int64")

    with mlflow.resume(runs[champion_label]):
        set_tags({"champion": "true"})
        tracking.log_frame(evaluation, "evaluation.csv")
        version = tracking.log_recommender(champion, REGISTERED_NAME)
    with transaction(warehouse) as con:
        con.execute(PATIENT_CODES_SQL)
        con.execute("CREATE OR REPLACE TABLE marts.recommendations (patient_key VARCHAR, rank INTEGER, "
                    "product_id VARCHAR, score DOUBLE, model VARCHAR)")
        for start in range(0, len(patients), config.serve_batch):
            batch = patients.user_id.iloc[start:start + config.serve_batch]
            candidates = policy.recommend(batch, k=3 * config.k, groups=groups,  # room for the category cap
                                          exclude_seen=config.exclude_seen, allowed=pd.Index(allowed))
            final = apply_business_rules(candidates, products, k=config.k, exclude_rx_only=config.exclude_rx_only,
                                         max_per_category=config.max_per_category,
                                         bought=bought[bought.user_id.isin(batch)] if bought is not None else None,
                                         one_time_kinds=tuple(config.one_time_kinds))
            final = final.rename(columns={"item_id": "product_id"})
            final["model"] = final.model.where(final.model != champion.name, champion_label)
            served = served.add(final.model.value_counts(), fill_value=0)
            con.register("recs_frame", final[["user_id", "rank", "product_id", "score", "model"]])
            con.execute("INSERT INTO marts.recommendations SELECT c.patient_key, r.rank, r.product_id, r.score, "
                        "r.model FROM recs_frame r JOIN _rec_patients c USING (user_id)")
            con.unregister("recs_frame")
        con.register("eval_frame", evaluation)
        con.execute("CREATE OR REPLACE TABLE marts.recommendation_evaluation AS SELECT * FROM eval_frame")
        con.unregister("eval_frame")
        n = row_count(con, "marts.recommendations")
        covered = con.execute("SELECT count(DISTINCT patient_key) FROM marts.recommendations").fetchone()[0]
    pop = holdout.set_index("model")[ndcg].get("popularity")
    best = holdout.set_index("model")[ndcg].get(champion_label)
    context.log.info("Champion %s: %s %.4f (popularity %.4f).", champion_label, ndcg, best or 0, pop or 0)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "patients_covered": covered,
        "champion": champion_label,
        "registered_model": f"{REGISTERED_NAME} v{version} (alias champion)",
        "evaluation": dg.MetadataValue.md(evaluation.round(4).to_markdown(index=False)),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(runs[champion_label])),
        "served_by": dg.MetadataValue.md(served.astype(int).rename_axis("model").rename("rows").reset_index()
                                         .to_markdown(index=False)),
    })

