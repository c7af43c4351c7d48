"""AutoML tabular training through the real SDK: objectives change what the search
optimizes, evaluations in Vertex's schema, deploy + predict, batch prediction, and the
errors Vertex gives for too little data, bad column specs and what runs only on Google
Cloud."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform, bigquery

TARGET = "income_bracket"


def _train(dataset, objective, **kwargs):
    job = aiplatform.AutoMLTabularTrainingJob(
        display_name=f"census-{objective}", optimization_prediction_type="classification",
        optimization_objective=objective,
        optimization_objective_recall_value=kwargs.pop("recall", None))
    model = job.run(dataset=dataset, target_column=TARGET, budget_milli_node_hours=1000,
                    model_display_name=f"census-{objective}", **kwargs)
    return job, model


@pytest.fixture(scope="module")
def au_roc(census_dataset):
    job, model = _train(census_dataset, "maximize-au-roc")
    yield job, model
    model.delete()


@pytest.fixture(scope="module")
def precision_at_recall(census_dataset):
    job, model = _train(census_dataset, "maximize-precision-at-recall", recall=0.9)
    yield job, model
    model.delete()


def _search(job) -> dict:
    return dict(job.gca_resource.training_task_metadata["localSearch"])


def test_objectives_change_what_is_optimized(au_roc, precision_at_recall):
    roc, par = _search(au_roc[0]), _search(precision_at_recall[0])
    assert roc["optimizationObjective"] == "maximize-au-roc"
    assert roc["searchMetric"] == "auRoc" and par["searchMetric"] == "precisionAtRecall"
    assert roc["decisionThreshold"] is None
    assert 0 < par["decisionThreshold"] < 1  # the threshold that keeps recall >= 0.9
    assert roc["validationScore"] != par["validationScore"]
    assert 0.5 < roc["validationScore"] <= 1 and 0 < par["validationScore"] <= 1
    assert roc["trials"] >= 1 and roc["bestModelFamily"] in roc["bestScorePerFamily"]
    assert au_roc[0].state.name == "PIPELINE_STATE_SUCCEEDED"


def test_classification_evaluation_schema(census, au_roc):
    model = au_roc[1]
    evaluation = model.get_model_evaluation()
    assert evaluation._gca_resource.metrics_schema_uri.endswith("classification_metrics_1.0.0.yaml")
    metrics = evaluation.metrics
    for key in ("auPrc", "auRoc", "logLoss"):
        assert 0 < metrics[key] < 1.5, key
    assert metrics["auRoc"] > 0.75  # the census income task is learnable
    points = metrics["confidenceMetrics"]
    assert len(points) == 101 and points[0]["recall"] == 1.0
    recalls = [p["recall"] for p in points]
    assert recalls == sorted(recalls, reverse=True)
    matrix = metrics["confusionMatrix"]
    classes = sorted(census[2][TARGET].unique())
    assert [s["displayName"] for s in matrix["annotationSpecs"]] == classes
    assert sum(sum(row) for row in matrix["rows"]) == round(0.1 * len(census[2]))
    attributions = dict(evaluation._gca_resource.model_explanation.mean_attributions[0]
                        .feature_attributions)
    assert set(attributions) == set(census[2].columns) - {TARGET}
    assert max(attributions.values()) > 0


def test_deploy_and_predict(census, au_roc):
    model = au_roc[1]
    endpoint = model.deploy(machine_type="n1-standard-4")
    try:
        rows = census[2].drop(columns=[TARGET]).head(5)
        instances = [{k: str(v) for k, v in row.items()} for row in rows.to_dict("records")]
        predictions = endpoint.predict(instances).predictions
        assert len(predictions) == 5
        for p in predictions:
            assert sorted(p["classes"]) == sorted(census[2][TARGET].unique())
            assert abs(sum(p["scores"]) - 1) < 1e-6
    finally:
        endpoint.undeploy_all()
        endpoint.delete()


def test_batch_prediction_from_bigquery(census, au_roc, automl_env):
    job = au_roc[1].batch_predict(
        job_display_name="census-batch", bigquery_source=census[0],
        bigquery_destination_prefix=f"bq://{automl_env.project}",
        instances_format="bigquery", predictions_format="bigquery",
        machine_type="n1-standard-4")
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    table = job.output_info.bigquery_output_dataset.removeprefix("bq://")
    rows = list(bigquery.Client().query(
        f"SELECT prediction FROM `{table}.predictions`").result())
    assert len(rows) == len(census[2])


def test_regression_from_csv_with_fraction_split(census):
    frame = census[2]
    dataset = aiplatform.TabularDataset.create(display_name="census-csv-reg",
                                               gcs_source=census[1])
    job = aiplatform.AutoMLTabularTrainingJob(
        display_name="hours", optimization_prediction_type="regression",
        optimization_objective="minimize-mae",
        column_specs={"age": "numeric", "education": "categorical", "occupation": "auto",
                      "sex": "categorical", "marital_status": "categorical"})
    model = job.run(dataset=dataset, target_column="hours_per_week",
                    budget_milli_node_hours=1000, training_fraction_split=0.7,
                    validation_fraction_split=0.15, test_fraction_split=0.15)
    try:
        metrics = model.get_model_evaluation().metrics
        assert set(metrics) >= {"rootMeanSquaredError", "meanAbsoluteError", "rSquared",
                                "meanAbsolutePercentageError"}
        assert metrics["meanAbsoluteError"] < frame["hours_per_week"].std()
        assert _search(job)["searchMetric"] == "meanAbsoluteError"
    finally:
        model.delete()
        dataset.delete()


def test_too_little_data_fails_the_pipeline(automl_env, census):
    client = bigquery.Client()
    small = census[0].removeprefix("bq://") + "_small"
    client.query(f"CREATE TABLE `{small}` AS SELECT * FROM `{census[0][5:]}` LIMIT 200") \
        .result()
    dataset = aiplatform.TabularDataset.create(display_name="small", bq_source=f"bq://{small}")
    job = aiplatform.AutoMLTabularTrainingJob(
        display_name="small", optimization_prediction_type="classification")
    with pytest.raises(RuntimeError, match="200 rows; tabular training needs between 1,000"):
        job.run(dataset=dataset, target_column=TARGET, budget_milli_node_hours=1000)
    assert job.state.name == "PIPELINE_STATE_FAILED"
    dataset.delete()


def test_bad_column_specs_and_objectives(census_dataset):
    job = aiplatform.AutoMLTabularTrainingJob(
        display_name="bad-columns", optimization_prediction_type="classification",
        column_specs={"age": "numeric", "no_such_column": "categorical"})
    with pytest.raises(RuntimeError, match="no_such_column.. in the transformations is not"):
        job.run(dataset=census_dataset, target_column=TARGET, budget_milli_node_hours=1000)
    job = aiplatform.AutoMLTabularTrainingJob(
        display_name="bad-objective", optimization_prediction_type="regression",
        optimization_objective="maximize-au-roc")
    with pytest.raises(exceptions.BadRequest, match="not valid for prediction type regression"):
        job.run(dataset=census_dataset, target_column="age", budget_milli_node_hours=1000)
    job = aiplatform.AutoMLTabularTrainingJob(
        display_name="bad-budget", optimization_prediction_type="classification")
    with pytest.raises(exceptions.BadRequest, match="between 1000 and 72000"):
        job.run(dataset=census_dataset, target_column=TARGET, budget_milli_node_hours=100)


def test_forecasting_runs_on_gcp(census):
    dataset = aiplatform.TimeSeriesDataset.create(display_name="series", bq_source=census[0])
    job = aiplatform.AutoMLForecastingTrainingJob(
        display_name="forecast", optimization_objective="minimize-rmse")
    try:
        with pytest.raises(exceptions.GoogleAPICallError, match="LAB_BACKEND=gcp"):
            job.run(dataset=dataset, target_column="hours_per_week", time_column="age",
                    time_series_identifier_column="sex", unavailable_at_forecast_columns=[],
                    available_at_forecast_columns=[], forecast_horizon=3,
                    data_granularity_unit="day", data_granularity_count=1)
    finally:
        dataset.delete()


def test_cancel_stops_before_the_model_is_registered(census_dataset):
    job = aiplatform.AutoMLTabularTrainingJob(
        display_name="cancel-me", optimization_prediction_type="classification")
    job.run(dataset=census_dataset, target_column=TARGET, budget_milli_node_hours=1000,
            sync=False)
    job.wait_for_resource_creation()
    job.cancel()
    with pytest.raises(RuntimeError, match="cancelled"):
        job.wait()
    assert job.state.name == "PIPELINE_STATE_CANCELLED"
    assert not job.gca_resource.model_to_upload.name
