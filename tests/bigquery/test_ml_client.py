"""BigQuery ML through the front door: the real google-cloud-bigquery client against the
local BigQuery service, with statements from Google's BigQuery ML tutorials."""

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions

PENGUINS = "`bigquery-public-data.ml_datasets.penguins`"
CENSUS = "`bigquery-public-data.ml_datasets.census_adult_income`"


def run(client, sql: str):
    """Runs a statement; a service error fails the test in seconds instead of being retried
    for minutes by the client's default retry policy."""
    from google.cloud import bigquery

    fast = bigquery.DEFAULT_RETRY.with_deadline(5)
    return client.query(sql, retry=fast, job_retry=None).result(retry=fast)


@pytest.fixture(scope="module")
def bq(local_env):
    from google.cloud import bigquery

    client = bigquery.Client()
    dataset = client.create_dataset(f"{local_env.project}.bqml_{uuid.uuid4().hex[:8]}")
    client.ml_dataset = dataset.dataset_id
    yield client
    client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def fields(rows) -> dict:
    return {f.name: (f.field_type, f.mode) for f in rows.schema}


def test_penguins_linear_regression_tutorial(bq):
    d = bq.ml_dataset
    run(bq, f"""CREATE OR REPLACE MODEL `{d}.penguins_model`
        OPTIONS (model_type='linear_reg', input_label_cols=['body_mass_g']) AS
        SELECT * FROM {PENGUINS} WHERE body_mass_g IS NOT NULL""")
    evaluation = run(bq, f"SELECT * FROM ML.EVALUATE(MODEL `{d}.penguins_model`)")
    assert list(fields(evaluation)) == ["mean_absolute_error", "mean_squared_error",
                                        "mean_squared_log_error", "median_absolute_error",
                                        "r2_score", "explained_variance"]
    assert next(iter(evaluation))["r2_score"] > 0.8
    predictions = run(bq, f"""SELECT * FROM ML.PREDICT(MODEL `{d}.penguins_model`,
        (SELECT * FROM {PENGUINS} WHERE body_mass_g IS NOT NULL AND island = 'Biscoe'))""")
    schema = fields(predictions)
    assert list(schema)[:2] == ["predicted_body_mass_g", "species"]
    assert schema["predicted_body_mass_g"][0] in ("FLOAT", "FLOAT64")
    frame = predictions.to_dataframe()
    assert (frame["predicted_body_mass_g"] - frame["body_mass_g"]).abs().mean() < 400
    assert frame["predicted_body_mass_g"].std() > 200

    model = bq.get_model(f"{bq.project}.{d}.penguins_model")
    assert model.model_type == "LINEAR_REGRESSION"
    assert [c.name for c in model.label_columns] == ["predicted_body_mass_g"]
    assert {c.name for c in model.feature_columns} >= {"species", "island", "sex"}
    training = model.training_runs[0]
    assert training["trainingOptions"]["inputLabelColumns"] == ["body_mass_g"]
    assert training["evaluationMetrics"]["regressionMetrics"]["rSquared"] > 0.8
    assert model.created is not None
    model.description = "Penguin weight from measurements"
    model.labels = {"lab": "bqml"}
    model = bq.update_model(model, ["description", "labels"])
    assert bq.get_model(model.reference).description == "Penguin weight from measurements"
    assert "penguins_model" in [m.model_id for m in bq.list_models(d)]
    info = run(bq, f"SELECT * FROM ML.TRAINING_INFO(MODEL `{d}.penguins_model`)")
    assert list(fields(info))[:3] == ["training_run", "iteration", "loss"]


def test_census_classification_with_transform(bq):
    d = bq.ml_dataset
    run(bq, f"""CREATE MODEL `{d}.census_model`
        TRANSFORM(ML.STANDARD_SCALER(age) OVER() AS age,
                  ML.BUCKETIZE(hours_per_week, [20, 40, 60]) AS hours,
                  education, occupation, marital_status, capital_gain, income_bracket)
        OPTIONS (model_type='logistic_reg', input_label_cols=['income_bracket'],
                 auto_class_weights=TRUE) AS
        SELECT * FROM {CENSUS} WHERE MOD(functional_weight, 3) = 0""")
    predictions = run(bq, f"""SELECT * FROM ML.PREDICT(MODEL `{d}.census_model`,
        (SELECT * FROM {CENSUS} LIMIT 50))""")
    schema = {f.name: f for f in predictions.schema}
    probs = schema["predicted_income_bracket_probs"]
    assert probs.mode == "REPEATED" and probs.field_type in ("RECORD", "STRUCT")
    assert [(f.name, f.field_type) for f in probs.fields] in (
        [("label", "STRING"), ("prob", "FLOAT")], [("label", "STRING"), ("prob", "FLOAT64")])
    row = next(iter(predictions))
    assert abs(sum(p["prob"] for p in row["predicted_income_bracket_probs"]) - 1) < 1e-6
    counts = {r["p"]: r["n"] for r in run(bq, f"""
        SELECT predicted_income_bracket AS p, COUNT(*) AS n
        FROM ML.PREDICT(MODEL `{d}.census_model`, (SELECT * FROM {CENSUS} LIMIT 1000))
        GROUP BY 1""")}
    assert len(counts) == 2 and sum(counts.values()) == 1000
    evaluation = next(iter(run(bq, f"SELECT * FROM ML.EVALUATE(MODEL `{d}.census_model`)")))
    assert evaluation["roc_auc"] > 0.8
    matrix = run(bq, f"SELECT * FROM ML.CONFUSION_MATRIX(MODEL `{d}.census_model`)").to_dataframe()
    assert list(matrix.columns) == ["expected_label", "___50K", "__50K"]
    roc = run(bq, f"SELECT * FROM ML.ROC_CURVE(MODEL `{d}.census_model`)").to_dataframe()
    assert roc["recall"].between(0, 1).all() and len(roc) > 10


def test_errors_in_bigquery_shape(bq):
    d = bq.ml_dataset
    with pytest.raises(exceptions.NotFound, match="Not found: Model"):
        run(bq, f"SELECT * FROM ML.EVALUATE(MODEL `{d}.no_such_model`)")
    run(bq, f"""CREATE MODEL `{d}.tiny` OPTIONS(model_type='kmeans', num_clusters=2) AS
        SELECT culmen_length_mm, flipper_length_mm FROM {PENGUINS}""")
    with pytest.raises(exceptions.Conflict, match="Already Exists: Model"):
        run(bq, f"""CREATE MODEL `{d}.tiny` OPTIONS(model_type='kmeans') AS
            SELECT culmen_length_mm FROM {PENGUINS}""")
    run(bq, f"""CREATE MODEL IF NOT EXISTS `{d}.tiny` OPTIONS(model_type='kmeans') AS
        SELECT culmen_length_mm FROM {PENGUINS}""")
    with pytest.raises(exceptions.BadRequest, match="Unknown option: num_trees"):
        run(bq, f"""CREATE MODEL `{d}.bad` OPTIONS(model_type='linear_reg', num_trees=3) AS
            SELECT body_mass_g AS label, flipper_length_mm FROM {PENGUINS}""")
    with pytest.raises(exceptions.BadRequest, match="LAB_BACKEND=gcp"):
        run(bq, f"""CREATE MODEL `{d}.bad` OPTIONS(model_type='TENSORFLOW') AS
            SELECT body_mass_g AS label, flipper_length_mm FROM {PENGUINS}""")
    with pytest.raises(exceptions.NotFound, match="Dataset"):
        run(bq, f"""CREATE MODEL `no_such_dataset.m` OPTIONS(model_type='kmeans') AS
            SELECT culmen_length_mm FROM {PENGUINS}""")
    run(bq, f"DROP MODEL `{d}.tiny`")
    with pytest.raises(exceptions.NotFound):
        bq.get_model(f"{bq.project}.{d}.tiny")
