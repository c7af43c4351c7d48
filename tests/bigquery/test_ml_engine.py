"""BigQuery ML engine, driven directly with DuckDB as the SQL engine (the service tests in
test_ml_client.py go through the real client). Statements follow Google's BigQuery ML
tutorials; checks are on the documented output columns and types and on model quality."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from labkit.bigquery.ml import MLEngine, MLError
from labkit.bigquery.ml.split import eval_mask
from labkit.bigquery.public_data import BUILDERS

PUBLIC = "`bigquery-public-data.ml_datasets."


@pytest.fixture(scope="module")
def ml(tmp_path_factory):
    con = duckdb.connect()
    for name, build in BUILDERS.items():
        # from_pandas turns NaN into NULL, as the columns are NULLable in BigQuery
        con.register(name, pa.Table.from_pandas(build().to_pandas(), preserve_index=False))
    rng = np.random.default_rng(7)
    days = pd.date_range("2024-01-01", periods=200, freq="D")
    steps = np.arange(200)
    con.register("daily_sales", pd.DataFrame({
        "day": np.tile(days, 2), "store": np.repeat(["north", "south"], 200),
        "sales": np.r_[200 + 0.5 * steps + 20 * np.sin(2 * np.pi * steps / 7),
                       80 + 10 * (steps % 7 >= 5)] + rng.normal(0, 2, 400)}))
    users, items = rng.normal(size=(30, 2)), rng.normal(size=(25, 2))
    rows = [(u, i, float(3 + users[u] @ items[i])) for u in range(30) for i in range(25)
            if rng.random() < 0.7]
    con.register("ratings", pd.DataFrame(rows, columns=["user_id", "item_id", "rating"]))
    lock = __import__("threading").Lock()

    def run_query(sql: str) -> pa.Table:
        sql = sql.replace(PUBLIC, "`").replace("`", "")
        with lock:
            return con.sql(sql).to_arrow_table()

    engine = MLEngine(tmp_path_factory.mktemp("models"), run_query)

    def query(sql: str) -> pd.DataFrame:
        result = engine.execute(sql, "proj", "bqml")
        with lock:
            for name, table in result.relations.items():
                con.register(name, table)
            return con.sql(result.rewritten_sql.replace("`", "")).to_arrow_table()

    engine.query = query
    engine.con = con
    return engine


def types(table: pa.Table) -> dict:
    return {f.name: str(f.type) for f in table.schema}


def test_linear_reg_penguins(ml):
    ml.execute(f"""CREATE MODEL `bqml.penguins_model`
        OPTIONS (model_type='linear_reg', input_label_cols=['body_mass_g']) AS
        SELECT * FROM {PUBLIC}penguins` WHERE body_mass_g IS NOT NULL""", "proj", None)
    ev = ml.query("SELECT * FROM ML.EVALUATE(MODEL `bqml.penguins_model`)")
    assert ev.column_names == ["mean_absolute_error", "mean_squared_error",
                               "mean_squared_log_error", "median_absolute_error", "r2_score",
                               "explained_variance"]
    assert set(types(ev).values()) == {"double"}
    assert ev["r2_score"][0].as_py() > 0.8
    pred = ml.query(f"""SELECT * FROM ML.PREDICT(MODEL `bqml.penguins_model`,
        (SELECT * FROM {PUBLIC}penguins` WHERE body_mass_g IS NOT NULL))""")
    assert pred.column_names[0] == "predicted_body_mass_g"
    assert pred.column_names[1:] == ["species", "island", "culmen_length_mm", "culmen_depth_mm",
                                     "flipper_length_mm", "body_mass_g", "sex"]
    err = np.abs(np.array(pred["predicted_body_mass_g"]) - np.array(pred["body_mass_g"]))
    assert err.mean() < 350 and np.std(pred["predicted_body_mass_g"]) > 300
    weights = ml.query("SELECT * FROM ML.WEIGHTS(MODEL bqml.penguins_model)").to_pylist()
    by_name = {w["processed_input"]: w for w in weights}
    assert "__INTERCEPT__" in by_name and by_name["flipper_length_mm"]["weight"] > 0
    assert {c["category"] for c in by_name["island"]["category_weights"]} == {
        "Biscoe", "Dream", "Torgersen"}
    info = ml.query("SELECT * FROM ML.TRAINING_INFO(MODEL bqml.penguins_model)")
    assert info.column_names == ["training_run", "iteration", "loss", "eval_loss",
                                 "learning_rate", "duration_ms"]
    features = ml.query("SELECT * FROM ML.FEATURE_INFO(MODEL bqml.penguins_model)").to_pylist()
    sex = next(f for f in features if f["input"] == "sex")
    assert sex["category_count"] == 2 and sex["null_count"] > 0
    explained = ml.query(f"""SELECT * FROM ML.EXPLAIN_PREDICT(MODEL bqml.penguins_model,
        (SELECT * FROM {PUBLIC}penguins` WHERE body_mass_g IS NOT NULL LIMIT 5),
        STRUCT(3 AS top_k_features))""")
    assert explained.column_names[:5] == ["predicted_body_mass_g", "top_feature_attributions",
                                          "baseline_prediction_value", "prediction_value",
                                          "approximation_error"]
    row = explained.to_pylist()[0]
    assert len(row["top_feature_attributions"]) == 3
    sizes = [abs(a["attribution"]) for a in row["top_feature_attributions"]]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 0
    assert row["approximation_error"] < 1e-6    # Shapley values are exact for linear_reg


def test_logistic_reg_census_transform_and_class_weights(ml):
    ml.execute(f"""CREATE OR REPLACE MODEL bqml.census_model
        TRANSFORM(ML.STANDARD_SCALER(age) OVER() AS age_std,
                  ML.QUANTILE_BUCKETIZE(hours_per_week, 5) OVER() AS hours_bucket,
                  ML.FEATURE_CROSS(STRUCT(education, marital_status)) AS edu_marital,
                  workclass, occupation, capital_gain, income_bracket)
        OPTIONS (model_type='logistic_reg', input_label_cols=['income_bracket'],
                 auto_class_weights=TRUE, max_iterations=30, enable_global_explain=TRUE) AS
        SELECT * FROM {PUBLIC}census_adult_income` WHERE functional_weight < 200000""",
               "proj", None)
    ev = ml.query("SELECT * FROM ML.EVALUATE(MODEL bqml.census_model)")
    assert ev.column_names == ["threshold", "precision", "recall", "accuracy", "f1_score",
                               "log_loss", "roc_auc"]
    assert ev["roc_auc"][0].as_py() > 0.85
    # balanced class weights favour recall on the minority class
    assert ev["recall"][0].as_py() > ev["precision"][0].as_py()
    cm = ml.query("SELECT * FROM ML.CONFUSION_MATRIX(MODEL bqml.census_model)")
    assert cm.column_names == ["expected_label", "___50K", "__50K"]
    roc = ml.query("SELECT * FROM ML.ROC_CURVE(MODEL bqml.census_model, "
                   f"TABLE {PUBLIC}census_adult_income`, GENERATE_ARRAY(0.1, 0.9, 0.1))")
    assert roc.num_rows == 9 and types(roc)["true_positives"] == "int64"
    assert np.all(np.diff(roc["recall"].to_numpy()) <= 0)
    sql = (f"SELECT predicted_income_bracket AS p, COUNT(*) AS n FROM ML.PREDICT(MODEL "
           f"bqml.census_model, (SELECT * FROM {PUBLIC}census_adult_income` LIMIT 2000)"
           "{}) GROUP BY 1")
    low = {r["p"]: r["n"] for r in ml.query(sql.format(", STRUCT(0.2 AS threshold)"))
           .to_pylist()}
    high = {r["p"]: r["n"] for r in ml.query(sql.format(", STRUCT(0.8 AS threshold)"))
            .to_pylist()}
    assert low[" >50K"] > high.get(" >50K", 0)
    pred = ml.query(f"SELECT * FROM ML.PREDICT(MODEL bqml.census_model, (SELECT * FROM "
                    f"{PUBLIC}census_adult_income` LIMIT 3))")
    probs = pred.schema.field("predicted_income_bracket_probs").type
    assert pa.types.is_list(probs) and str(probs.value_type) == \
        "struct<label: string, prob: double>"
    assert "age_std" not in pred.column_names and "age" in pred.column_names
    glob = ml.query("SELECT * FROM ML.GLOBAL_EXPLAIN(MODEL bqml.census_model)").to_pylist()
    assert glob[0]["attribution"] >= glob[-1]["attribution"] > 0


def test_multiclass_iris_and_boosted_tree(ml):
    ml.execute(f"""CREATE MODEL bqml.iris_model OPTIONS(model_type='logistic_reg',
        input_label_cols=['species'], max_iterations=50) AS
        SELECT * FROM {PUBLIC}iris`""", "proj", None)
    ev = ml.query("SELECT * FROM ML.EVALUATE(MODEL bqml.iris_model)")
    assert "threshold" not in ev.column_names and ev["accuracy"][0].as_py() > 0.9
    cm = ml.query("SELECT * FROM ML.CONFUSION_MATRIX(MODEL bqml.iris_model)")
    assert cm.num_rows == 3 and cm.num_columns == 4
    ml.execute(f"""CREATE MODEL bqml.tree OPTIONS(model_type='boosted_tree_classifier',
        input_label_cols=['species'], max_iterations=10, max_tree_depth=3,
        data_split_method='NO_SPLIT') AS SELECT * FROM {PUBLIC}penguins`""", "proj", None)
    imp = ml.query("SELECT * FROM ML.FEATURE_IMPORTANCE(MODEL bqml.tree)")
    assert imp.column_names == ["feature", "importance_weight", "importance_gain",
                                "importance_cover"]
    assert imp["importance_gain"][0].as_py() > 0
    assert ml.query("SELECT * FROM ML.EVALUATE(MODEL bqml.tree)")["accuracy"][0].as_py() > 0.9
    ml.execute(f"""CREATE MODEL bqml.forest OPTIONS(model_type='random_forest_regressor',
        input_label_cols=['body_mass_g'], num_parallel_tree=20) AS
        SELECT * FROM {PUBLIC}penguins` WHERE body_mass_g IS NOT NULL""", "proj", None)
    assert ml.query("SELECT * FROM ML.EVALUATE(MODEL bqml.forest)")["r2_score"][0].as_py() > 0.8


def test_kmeans_segments(ml):
    ml.execute(f"""CREATE MODEL bqml.segments OPTIONS(model_type='kmeans', num_clusters=3,
        kmeans_init_method='KMEANS++') AS SELECT culmen_length_mm, culmen_depth_mm,
        flipper_length_mm, body_mass_g, island FROM {PUBLIC}penguins`""", "proj", None)
    pred = ml.query(f"SELECT * FROM ML.PREDICT(MODEL bqml.segments, TABLE {PUBLIC}penguins`)")
    assert pred.column_names[:2] == ["centroid_id", "nearest_centroids_distance"]
    assert set(pred["centroid_id"].to_pylist()) == {1, 2, 3}
    ev = ml.query("SELECT * FROM ML.EVALUATE(MODEL bqml.segments)")
    assert ev.column_names == ["davies_bouldin_index", "mean_squared_distance"]
    cents = ml.query("SELECT * FROM ML.CENTROIDS(MODEL bqml.segments)")
    assert cents.column_names == ["centroid_id", "feature", "numerical_value",
                                  "categorical_value", "geography_value"]
    masses = [r["numerical_value"] for r in cents.to_pylist() if r["feature"] == "body_mass_g"]
    assert 2500 < min(masses) < max(masses) < 6500
    losses = ml.query("SELECT * FROM ML.TRAINING_INFO(MODEL bqml.segments)")["loss"].to_pylist()
    assert losses == sorted(losses, reverse=True)


def test_dnn_classifier(ml):
    ml.execute(f"""CREATE MODEL bqml.dnn OPTIONS(model_type='dnn_classifier',
        input_label_cols=['species'], hidden_units=[16], max_iterations=25, learn_rate=0.02,
        batch_size=32) AS SELECT * FROM {PUBLIC}penguins`""", "proj", None)
    ev = ml.query("SELECT * FROM ML.EVALUATE(MODEL bqml.dnn)")
    assert ev["accuracy"][0].as_py() > 0.9
    info = ml.query("SELECT * FROM ML.TRAINING_INFO(MODEL bqml.dnn)")["loss"].to_pylist()
    assert info[-1] < info[0]


def test_arima_plus_forecast(ml):
    ml.execute("""CREATE MODEL bqml.sales_forecast OPTIONS(model_type='ARIMA_PLUS',
        time_series_timestamp_col='day', time_series_data_col='sales',
        time_series_id_col='store', horizon=14) AS SELECT * FROM daily_sales""", "proj", None)
    fc = ml.query("SELECT * FROM ML.FORECAST(MODEL bqml.sales_forecast, "
                  "STRUCT(7 AS horizon, 0.9 AS confidence_level))")
    assert fc.column_names == ["store", "forecast_timestamp", "forecast_value",
                               "standard_error", "confidence_level",
                               "prediction_interval_lower_bound",
                               "prediction_interval_upper_bound",
                               "confidence_interval_lower_bound",
                               "confidence_interval_upper_bound"]
    stamp = fc.schema.field("forecast_timestamp").type
    assert pa.types.is_timestamp(stamp) and stamp.tz in ("UTC", "Etc/UTC")
    north = [r for r in fc.to_pylist() if r["store"] == "north"]
    steps = np.arange(200, 207)
    truth = 200 + 0.5 * steps + 20 * np.sin(2 * np.pi * steps / 7)
    assert np.abs(np.array([r["forecast_value"] for r in north]) - truth).mean() < 10
    ev = ml.query("SELECT * FROM ML.EVALUATE(MODEL bqml.sales_forecast)").to_pylist()
    assert all(r["seasonal_periods"] == ["WEEKLY"] for r in ev)
    parts = ml.query("SELECT * FROM ML.EXPLAIN_FORECAST(MODEL bqml.sales_forecast, "
                     "STRUCT(5 AS horizon)) WHERE store = 'north'").to_pylist()
    assert [r["time_series_type"] for r in parts].count("forecast") == 5
    history = [r for r in parts if r["time_series_type"] == "history"]
    assert len(history) == 200
    for r in history[10:15]:   # trend + weekly season + residual rebuild the adjusted series
        rebuilt = r["trend"] + r["seasonal_period_weekly"] + r["residual"]
        assert abs(rebuilt - r["time_series_adjusted_data"]) < 1e-6
    with pytest.raises(MLError, match="horizon"):
        ml.query("SELECT * FROM ML.FORECAST(MODEL bqml.sales_forecast, STRUCT(30 AS horizon))")


def test_matrix_factorization_recommend(ml):
    ml.execute("""CREATE MODEL bqml.recs OPTIONS(model_type='matrix_factorization',
        user_col='user_id', item_col='item_id', rating_col='rating', num_factors=2,
        l2_reg=0.5, data_split_method='RANDOM', data_split_eval_fraction=0.2) AS
        SELECT * FROM ratings""", "proj", None)
    ev = ml.query("SELECT * FROM ML.EVALUATE(MODEL bqml.recs)")
    assert ev["r2_score"][0].as_py() > 0.5
    recs = ml.query("SELECT * FROM ML.RECOMMEND(MODEL bqml.recs, (SELECT 3 AS user_id))")
    assert recs.column_names == ["predicted_rating", "user_id", "item_id"]
    assert recs.num_rows == 25 and len(set(recs["predicted_rating"].to_pylist())) > 20


def test_auto_split_rules():
    def held(n, **options):
        return int(eval_mask(pd.DataFrame({"x": range(n)}), options).sum())

    assert held(499) == 0
    assert held(1000) == 200
    assert held(60_000) == 10_000
    assert held(1000, data_split_method="RANDOM", data_split_eval_fraction=0.3) == 300
    assert held(1000, data_split_method="NO_SPLIT") == 0
    seq = eval_mask(pd.DataFrame({"t": range(10)}), {"data_split_method": "SEQ",
                                                     "data_split_col": "t"})
    assert seq.tolist() == [False] * 8 + [True] * 2
    custom = eval_mask(pd.DataFrame({"is_eval": [True, False, None]}),
                       {"data_split_method": "CUSTOM", "data_split_col": "is_eval"})
    assert custom.tolist() == [True, False, False]
    with pytest.raises(MLError, match="must be BOOL"):
        eval_mask(pd.DataFrame({"is_eval": [1, 0]}),
                  {"data_split_method": "CUSTOM", "data_split_col": "is_eval"})


def test_errors_and_model_resources(ml):
    create = "CREATE MODEL bqml.dup OPTIONS(model_type='linear_reg') AS SELECT 1.0 AS label, x " \
             "FROM UNNEST([1, 2, 3]) AS t(x)"
    ml.execute(create.replace("UNNEST([1, 2, 3]) AS t(x)", "range(10) AS t(x)"), "proj", None)
    with pytest.raises(MLError, match="Already Exists: Model proj:bqml.dup") as err:
        ml.execute(create, "proj", None)
    assert err.value.reason == "duplicate"
    with pytest.raises(MLError, match="Not found: Model proj:bqml.missing") as err:
        ml.execute("SELECT * FROM ML.EVALUATE(MODEL bqml.missing)", "proj", None)
    assert err.value.reason == "notFound"
    with pytest.raises(MLError, match="Unknown option: colour"):
        ml.execute("CREATE MODEL bqml.x OPTIONS(model_type='linear_reg', colour='red') AS "
                   "SELECT 1 AS label", "proj", None)
    with pytest.raises(MLError, match="no column named income"):
        ml.execute("CREATE MODEL bqml.x OPTIONS(model_type='logistic_reg', "
                   "input_label_cols=['income']) AS SELECT 1 AS a, 2 AS b", "proj", None)
    with pytest.raises(MLError, match="ONNX.*LAB_BACKEND=gcp"):
        ml.execute("CREATE MODEL bqml.x OPTIONS(model_type='ONNX') AS SELECT 1", "proj", None)
    assert ml.handles("CREATE OR REPLACE MODEL d.m OPTIONS(model_type='kmeans') AS SELECT 1")
    assert ml.handles("SELECT * FROM ML.PREDICT(MODEL `p.d.m`, TABLE d.t)")
    assert not ml.handles("SELECT 'ML.PREDICT(MODEL x)' AS s")
    ml.execute(f"""CREATE MODEL bqml.resource_model OPTIONS(model_type='linear_reg',
        input_label_cols=['body_mass_g']) AS
        SELECT * FROM {PUBLIC}penguins` WHERE body_mass_g IS NOT NULL""", "proj", None)
    model = ml.get_model("proj", "bqml", "resource_model")
    assert model["modelType"] == "LINEAR_REGRESSION"
    assert model["labelColumns"] == [{"name": "predicted_body_mass_g",
                                      "type": {"typeKind": "FLOAT64"}}]
    run = model["trainingRuns"][0]
    assert run["trainingOptions"]["inputLabelColumns"] == ["body_mass_g"]
    assert run["evaluationMetrics"]["regressionMetrics"]["rSquared"] > 0.8
    patched = ml.patch_model("proj", "bqml", "dup", {"description": "d", "labels": {"k": "v"}})
    assert patched["description"] == "d" and patched["labels"] == {"k": "v"}
    restarted = MLEngine(ml.store.root, ml.run_query)
    assert restarted.get_model("proj", "bqml", "dup")["description"] == "d"
    assert "dup" in [m["modelReference"]["modelId"] for m in restarted.list_models("proj",
                                                                                    "bqml")]
    restarted.execute("DROP MODEL bqml.dup", "proj", None)
    with pytest.raises(KeyError):
        ml.get_model("proj", "bqml", "dup")
    ml.execute("DROP MODEL IF EXISTS bqml.dup", "proj", None)


def test_automl_classifier_runs_on_the_local_automl_search(ml):
    ml.execute(f"""CREATE MODEL bqml.automl OPTIONS(model_type='AUTOML_CLASSIFIER',
        input_label_cols=['species'], budget_hours=1.0) AS
        SELECT * FROM {PUBLIC}penguins`""", "proj", None)
    assert ml.get_model("proj", "bqml", "automl")["modelType"] == "AUTOML_CLASSIFIER"
    pred = ml.query(f"SELECT * FROM ML.PREDICT(MODEL bqml.automl, TABLE {PUBLIC}penguins`)")
    assert len(set(pred["predicted_species"].to_pylist())) == 3
    with pytest.raises(MLError, match="BUDGET_HOURS"):
        ml.execute(f"""CREATE MODEL bqml.automl2 OPTIONS(model_type='AUTOML_REGRESSOR',
            input_label_cols=['body_mass_g'], budget_hours=0.1) AS
            SELECT * FROM {PUBLIC}penguins`""", "proj", None)
    with pytest.raises(MLError, match="only supported for binary classification"):
        ml.execute(f"""CREATE MODEL bqml.automl3 OPTIONS(model_type='AUTOML_CLASSIFIER',
            input_label_cols=['species'], optimization_objective='MAXIMIZE_AU_ROC') AS
            SELECT * FROM {PUBLIC}penguins`""", "proj", None)
