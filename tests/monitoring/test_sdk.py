"""ModelDeploymentMonitoringJob and endpoint.explain() through the real Vertex AI SDK.

The tests marked `wired` need the endpoint routes to call labkit.vertex.monitoring.hooks
(after_predict on predict, explain on :explain)."""

from __future__ import annotations

import io
import json
import time
import uuid

import joblib
import numpy as np
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform, bigquery, storage
from google.cloud.aiplatform import model_monitoring

from labkit import monitoring_helpers as mh


def create_job(served, training, **kwargs):
    endpoint, _, deployed_id, schema_uri = served
    _, table = training
    objective = model_monitoring.ObjectiveConfig(
        skew_detection_config=model_monitoring.SkewDetectionConfig(
            data_source=table, target_field="label", skew_thresholds={"age": 0.25}),
        # no drift thresholds: every feature is watched at the default 0.3
        drift_detection_config=model_monitoring.DriftDetectionConfig(drift_thresholds={}))
    job = aiplatform.ModelDeploymentMonitoringJob.create(
        display_name="census-monitoring", endpoint=endpoint, objective_configs=objective,
        logging_sampling_strategy=model_monitoring.RandomSampleConfig(sample_rate=1.0),
        schedule_config=model_monitoring.ScheduleConfig(monitor_interval=1),
        alert_config=model_monitoring.EmailAlertConfig(user_emails=["ml-team@example.com"],
                                                       enable_logging=True),
        analysis_instance_schema_uri=schema_uri, **kwargs)
    return wait_running(job)


def wait_running(job, timeout_s: float = 60):
    """A new job is PENDING until Vertex has set it up; traffic counts once it is RUNNING."""
    deadline = time.monotonic() + timeout_s
    while job.state.name == "JOB_STATE_PENDING":  # .state fetches the job
        assert time.monotonic() < deadline, "the monitoring job stayed PENDING"
        time.sleep(0.5)
    return job


def test_job_lifecycle_through_the_sdk(served, training):
    endpoint = served[0]
    job = create_job(served, training)
    try:
        assert job.state.name == "JOB_STATE_RUNNING"
        resource = job.gca_resource
        assert resource.endpoint == endpoint.resource_name
        config = resource.model_deployment_monitoring_objective_configs[0]
        assert config.deployed_model_id == served[2]
        skew = config.objective_config.training_prediction_skew_detection_config
        assert skew.skew_thresholds["age"].value == 0.25
        assert resource.model_deployment_monitoring_schedule_config.monitor_interval.seconds \
            == 3600
        assert resource.model_monitoring_alert_config.email_alert_config.user_emails == [
            "ml-team@example.com"]
        table = resource.bigquery_tables[0].bigquery_table_path
        assert table.endswith(f"model_deployment_monitoring_{endpoint.name}.serving_predict")
        assert job.resource_name in [j.resource_name
                                     for j in aiplatform.ModelDeploymentMonitoringJob.list()]
        with pytest.raises(exceptions.Conflict):
            create_job(served, training)
        with pytest.raises(exceptions.BadRequest, match="deployed_model_id"):
            job.api_client.search_model_deployment_monitoring_stats_anomalies(request={
                "model_deployment_monitoring_job": job.resource_name,
                "objectives": [{"type_": 1}]})
        job.pause()
        assert aiplatform.ModelDeploymentMonitoringJob(job.name).state.name == "JOB_STATE_PAUSED"
        job.resume()
        job.update(display_name="renamed", alert_config=model_monitoring.EmailAlertConfig(
            user_emails=["other@example.com"]))
        fresh = aiplatform.ModelDeploymentMonitoringJob(job.name)
        assert fresh.display_name == "renamed"
        assert fresh.state.name == "JOB_STATE_RUNNING"
        # an analysis with no traffic yet finishes and finds nothing
        mh.wait_for_analysis(job)
        assert job.gca_resource.latest_monitoring_pipeline_metadata.run_time
        assert mh.stats_anomalies(job, served[2]).empty
    finally:
        job.delete()
    with pytest.raises(exceptions.NotFound):
        aiplatform.ModelDeploymentMonitoringJob(job.name)


@pytest.mark.wired
def test_skew_and_drift_detected_from_served_traffic(served, training):
    endpoint, _, deployed_id, _ = served
    job = create_job(served, training)
    rng = np.random.default_rng(5)
    try:
        normal = [[round(float(a), 1), str(c)] for a, c in
                  zip(rng.normal(40, 10, 200), rng.choice(["red", "blue"], 200), strict=True)]
        for start in range(0, 200, 50):
            endpoint.predict(instances=normal[start:start + 50])
        mh.wait_for_analysis(job)
        first = mh.stats_anomalies(job, deployed_id)
        assert set(first.feature) == {"age"}  # skew watches only features with thresholds
        assert not first.anomaly.any()
        shifted = [[round(float(a), 1), "red"] for a in rng.normal(70, 10, 200)]
        endpoint.predict(instances=shifted)
        mh.wait_for_analysis(job)
        latest = mh.stats_anomalies(job, deployed_id).groupby(
            ["objective", "feature"]).first()  # newest first
        assert latest.loc[("RAW_FEATURE_SKEW", "age"), "anomaly"]
        assert latest.loc[("RAW_FEATURE_SKEW", "age"), "threshold"] == 0.25
        assert ("RAW_FEATURE_SKEW", "colour") not in latest.index
        assert latest.loc[("RAW_FEATURE_DRIFT", "age"), "anomaly"]
        assert latest.loc[("RAW_FEATURE_DRIFT", "colour"), "threshold"] == 0.3  # default
        assert latest.loc[("RAW_FEATURE_DRIFT", "colour"), "anomaly"]  # half red -> all red
        table = job.gca_resource.bigquery_tables[0].bigquery_table_path.removeprefix("bq://")
        logged = bigquery.Client().query(
            f"SELECT COUNT(*) AS requests, SUM(ARRAY_LENGTH(request_payload)) AS instances "
            f"FROM `{table}`").to_dataframe()
        assert logged.requests[0] == 5 and logged.instances[0] == 400
    finally:
        job.delete()


@pytest.mark.wired
def test_explain_through_the_endpoint(served):
    endpoint = served[0]
    instances = [[55.0, "red"], [25.0, "blue"]]
    response = endpoint.explain(instances=instances)
    assert len(response.explanations) == 2
    assert response.predictions == endpoint.predict(instances=instances).predictions
    for explanation, prediction in zip(response.explanations, response.predictions,
                                       strict=True):
        attribution = explanation.attributions[0]
        assert attribution.instance_output_value == pytest.approx(prediction)
        total = sum(attribution.feature_attributions.values())
        delta = attribution.instance_output_value - attribution.baseline_output_value
        assert abs(total - delta) <= attribution.approximation_error * abs(delta) + 1e-9
        assert set(attribution.feature_attributions) == {"age", "colour"}


@pytest.mark.wired
def test_endpoint_request_response_logging_to_bigquery(served, local_env):
    """Needs the endpoint to keep predictRequestResponseLoggingConfig from create."""
    import time
    import uuid

    model = served[1]
    dataset = f"{local_env.project}.rr_logging_{uuid.uuid4().hex[:6]}"
    client = bigquery.Client()
    client.create_dataset(dataset)
    endpoint = aiplatform.Endpoint.create(
        display_name="rr-logging", enable_request_response_logging=True,
        request_response_logging_sampling_rate=1.0,
        request_response_logging_bq_destination_table=f"bq://{dataset}.log")
    try:
        config = endpoint.gca_resource.predict_request_response_logging_config
        assert config.enabled and config.sampling_rate == 1.0
        model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
        for age in (30.0, 50.0, 70.0):
            endpoint.predict(instances=[[age, "red"], [age, "blue"]])
        deadline = time.monotonic() + 20  # rows are written off the predict path
        while True:
            try:
                rows = client.query(
                    f"SELECT deployed_model_id, ARRAY_LENGTH(request_payload) AS n, "
                    f"ARRAY_LENGTH(response_payload) AS m FROM `{dataset}.log`").to_dataframe()
            except exceptions.NotFound:
                rows = []
            if len(rows) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert len(rows) == 3
        assert set(rows.n) == {2} and set(rows.m) == {2}
        assert set(rows.deployed_model_id) == {endpoint.list_models()[0].id}
    finally:
        endpoint.undeploy_all()
        endpoint.delete()
        client.delete_dataset(dataset, delete_contents=True)


def test_batch_prediction_with_explanations(served, local_env):
    """generate_explanation=True: each output line carries its attributions."""
    _, model, _, _ = served
    bucket = storage.Client().bucket(local_env.bucket)
    prefix = f"tests/monitoring/batch-{uuid.uuid4().hex[:6]}"
    lines = "\n".join(json.dumps(x) for x in [[55.0, "red"], [25.0, "blue"], [41.0, "red"]])
    bucket.blob(f"{prefix}/in.jsonl").upload_from_string(lines)
    job = model.batch_predict(
        job_display_name="explained", gcs_source=f"gs://{bucket.name}/{prefix}/in.jsonl",
        gcs_destination_prefix=f"gs://{bucket.name}/{prefix}/out",
        instances_format="jsonl", predictions_format="jsonl", generate_explanation=True,
        machine_type="n1-standard-2", sync=True)
    assert job.state == aiplatform.gapic.JobState.JOB_STATE_SUCCEEDED
    out = next(b for b in bucket.list_blobs(prefix=f"{prefix}/out")
               if b.name.rsplit("/", 1)[-1].startswith("prediction.results-"))
    rows = [json.loads(line) for line in out.download_as_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        attribution = row["explanation"]["attributions"][0]
        assert set(attribution["featureAttributions"]) == {"age", "colour"}
        assert attribution["instanceOutputValue"] == pytest.approx(row["prediction"])


def test_batch_explanations_need_an_explanation_spec(local_env):
    from sklearn.dummy import DummyRegressor

    bucket = storage.Client().bucket(local_env.bucket)
    prefix = f"tests/monitoring/noexp-{uuid.uuid4().hex[:6]}"
    buffer = io.BytesIO()
    joblib.dump(DummyRegressor().fit([[0], [1]], [0, 1]), buffer)
    bucket.blob(f"{prefix}/model/model.joblib").upload_from_string(buffer.getvalue())
    bucket.blob(f"{prefix}/in.jsonl").upload_from_string("[1]\n")
    model = aiplatform.Model.upload(
        display_name="no-explanations", artifact_uri=f"gs://{bucket.name}/{prefix}/model",
        serving_container_image_uri="us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest")
    try:
        with pytest.raises(exceptions.BadRequest, match="explanation_spec"):
            model.batch_predict(
                job_display_name="x", gcs_source=f"gs://{bucket.name}/{prefix}/in.jsonl",
                gcs_destination_prefix=f"gs://{bucket.name}/{prefix}/out",
                generate_explanation=True, machine_type="n1-standard-2", sync=True)
    finally:
        model.delete()


@pytest.mark.wired
def test_new_job_is_pending_and_logs_no_traffic_until_running(served, training):
    """Last in this file: it adds requests to the endpoint's request log table."""
    endpoint, _, _, schema_uri = served
    objective = model_monitoring.ObjectiveConfig(
        drift_detection_config=model_monitoring.DriftDetectionConfig(drift_thresholds={}))
    job = aiplatform.ModelDeploymentMonitoringJob.create(
        display_name="pending", endpoint=endpoint, objective_configs=objective,
        logging_sampling_strategy=model_monitoring.RandomSampleConfig(sample_rate=1.0),
        schedule_config=model_monitoring.ScheduleConfig(monitor_interval=1),
        alert_config=model_monitoring.EmailAlertConfig(user_emails=["ml-team@example.com"]),
        analysis_instance_schema_uri=schema_uri)
    table = job.gca_resource.bigquery_tables[0].bigquery_table_path.removeprefix("bq://")

    def logged() -> int:
        try:
            return int(bigquery.Client().query(
                f"SELECT COUNT(*) AS n FROM `{table}`").to_dataframe().n[0])
        except exceptions.NotFound:
            return 0

    try:
        assert job.state.name == "JOB_STATE_PENDING"
        before = logged()
        endpoint.predict(instances=[[41.0, "red"]] * 5)  # sent while PENDING: not logged
        wait_running(job)
        endpoint.predict(instances=[[41.0, "red"]] * 3)
        mh.wait_for_analysis(job)  # flushes the request log
        assert logged() == before + 1
    finally:
        job.delete()
