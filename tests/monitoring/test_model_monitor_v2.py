"""Model Monitoring v2 (vertexai.resources.preview.ml_monitoring) through the real SDK:
ModelMonitor, a monitoring job comparing a target table with the training data, drift stats
and alerts, and what Vertex refuses."""

from __future__ import annotations

import io
import json
import time
import uuid

import joblib
import numpy as np
import pandas as pd
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform, bigquery, storage
from sklearn.linear_model import LogisticRegression
from vertexai.resources.preview import ml_monitoring
from vertexai.resources.preview.ml_monitoring.spec import notification, objective, output, schema

from labkit.workspace import Workspace

SKLEARN_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"


@pytest.fixture(scope="module")
def model(local_env, training):
    frame, _ = training
    fitted = LogisticRegression().fit(frame[["age"]], frame.label)
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    prefix = f"tests/monitoring-v2/{uuid.uuid4().hex[:8]}"
    storage.Client().bucket(local_env.bucket).blob(f"{prefix}/model/model.joblib") \
        .upload_from_string(buffer.getvalue())
    uploaded = aiplatform.Model.upload(
        display_name=f"mm2-{uuid.uuid4().hex[:6]}",
        artifact_uri=f"gs://{local_env.bucket}/{prefix}/model",
        serving_container_image_uri=SKLEARN_IMAGE)
    yield uploaded
    uploaded.delete()


@pytest.fixture(scope="module")
def serving_tables(local_env, training):
    """(same-distribution table, drifted table): age shifted by 25 years, colour all red."""
    rng = np.random.default_rng(1)
    same = pd.DataFrame({"age": rng.normal(40, 10, 500).round(1),
                         "colour": rng.choice(["red", "blue"], 500)})
    drifted = pd.DataFrame({"age": rng.normal(65, 10, 500).round(1), "colour": ["red"] * 500})
    dataset = f"{local_env.project}.mm2_{uuid.uuid4().hex[:6]}"
    client = bigquery.Client()
    client.create_dataset(dataset)
    for name, frame in (("same", same), ("drifted", drifted)):
        client.load_table_from_dataframe(frame, f"{dataset}.{name}").result()
    yield f"bq://{dataset}.same", f"bq://{dataset}.drifted"
    client.delete_dataset(dataset, delete_contents=True)


def _monitor(model, training_uri):
    return ml_monitoring.ModelMonitor.create(
        model_name=model.resource_name, model_version_id=model.version_id,
        display_name="mm2-test",
        training_dataset=objective.MonitoringInput(table_uri=training_uri),
        model_monitoring_schema=schema.ModelMonitoringSchema(feature_fields=[
            schema.FieldSchema(name="age", data_type="float"),
            schema.FieldSchema(name="colour", data_type="categorical")]),
        tabular_objective_spec=objective.TabularObjective(
            feature_drift_spec=objective.DataDriftSpec(
                default_categorical_alert_threshold=0.2,
                default_numeric_alert_threshold=0.3)))


def test_monitoring_job_finds_drift_against_the_training_data(local_env, model, training,
                                                              serving_tables):
    monitor = _monitor(model, training[1])
    assert monitor.resource_name.startswith(
        f"projects/{local_env.project}/locations/us-central1/modelMonitors/")
    same_uri, drifted_uri = serving_tables
    calm = monitor.run(target_dataset=objective.MonitoringInput(table_uri=same_uri),
                       display_name="calm", sync=True)
    to = f"mlops-{uuid.uuid4().hex[:6]}@example.com"
    drift = monitor.run(target_dataset=objective.MonitoringInput(table_uri=drifted_uri),
                        display_name="drift", sync=True,
                        notification_spec=notification.NotificationSpec(
                            user_emails=[to], enable_cloud_logging=True),
                        output_spec=output.OutputSpec(gcs_base_dir=f"gs://{local_env.bucket}"))
    assert drift.state.name == "JOB_STATE_SUCCEEDED"
    status = drift._gca_resource.job_execution_detail.objective_status
    assert "not written locally" in status["raw-feature-drift"].message  # said, not dropped
    logs = Workspace.from_env().path("logs")
    mails = [json.loads(line) for line in (logs / "monitoring-email-outbox.jsonl").open()]
    mail = [m for m in mails if m["to"] == [to]][0]
    assert {a["statsName"] for a in mail["anomalies"]} == {"age", "colour"}
    entries = [json.loads(line) for line in (logs / "model-monitoring.jsonl").open()]
    assert sum(e["jsonPayload"].get("modelMonitoringJob") == drift.resource_name
               for e in entries) == 2
    assert {j.display_name for j in monitor.list_jobs()} >= {"calm", "drift"}

    stats = monitor.search_metrics(model_monitoring_job_name=drift.resource_name)
    points = {s.tabular_stats.stats_name: s.tabular_stats.data_points[0] for s in stats}
    assert set(points) == {"age", "colour"}
    assert points["age"].algorithm == "jensen_shannon_divergence"
    assert points["colour"].algorithm == "l_infinity"
    # half the training rows are blue; none of the drifted rows are: L-inf about 0.5
    colour = points["colour"].current_stats.distribution_value.distribution_deviation
    assert 0.4 < colour < 0.6 and points["colour"].has_anomaly
    assert points["age"].has_anomaly and points["age"].threshold_value == 0.3
    calm_stats = monitor.search_metrics(model_monitoring_job_name=calm.resource_name)
    assert not any(p.has_anomaly for s in calm_stats for p in s.tabular_stats.data_points)

    alerts = monitor.search_alerts(model_monitoring_job_name=drift.resource_name)
    assert int(alerts["total_number_alerts"]) == 2
    assert {a.stats_name for a in alerts["model_monitoring_alerts"]} == {"age", "colour"}
    only_age = monitor.search_metrics(stats_name="age", objective_type="raw-feature-drift")
    assert {s.tabular_stats.stats_name for s in only_age} == {"age"}
    assert len(only_age[0].tabular_stats.data_points) == 2  # one per job

    monitor.delete()  # with its jobs and their stats
    with pytest.raises(exceptions.NotFound):
        ml_monitoring.ModelMonitor(monitor.resource_name)


def test_what_vertex_refuses(local_env, model, training):
    with pytest.raises(exceptions.NotFound):
        ml_monitoring.ModelMonitor.create(
            model_name=model.resource_name.rsplit("/", 1)[0] + "/123456789",
            model_version_id="1")
    with pytest.raises(exceptions.BadRequest, match="model resource name"):
        ml_monitoring.ModelMonitor.create(model_name="penguins", model_version_id="1")
    monitor = _monitor(model, training[1])
    with pytest.raises(RuntimeError, match="query failed"):  # the job fails, with the reason
        monitor.run(target_dataset=objective.MonitoringInput(
            query="SELECT age FROM `no_such_dataset.table`"), sync=True)
    with pytest.raises(RuntimeError, match="is not found"):
        monitor.run(target_dataset=objective.MonitoringInput(
            endpoints=["projects/p/locations/us-central1/endpoints/1"]), sync=True)
    with pytest.raises(exceptions.MethodNotImplemented, match="notification channels"):
        monitor.run(target_dataset=objective.MonitoringInput(table_uri=training[1]), sync=True,
                    notification_spec=notification.NotificationSpec(
                        notification_channels=["projects/p/notificationChannels/1"]))
    with pytest.raises(exceptions.MethodNotImplemented, match="attribution"):
        monitor.run(target_dataset=objective.MonitoringInput(table_uri=training[1]), sync=True,
                    tabular_objective_spec=objective.TabularObjective(
                        feature_attribution_spec=objective.FeatureAttributionSpec(
                            default_alert_threshold=0.1)))
    # the SDK checks metric types itself; the service refuses them too (v1beta1 GAPIC client)
    with pytest.raises(exceptions.BadRequest, match="not supported"):
        monitor.api_client.create_model_monitoring_job(
            parent=monitor.resource_name, model_monitoring_job={"model_monitoring_spec": {
                "objective_spec": {
                    "tabular_objective": {"feature_drift_spec": {
                        "numeric_metric_type": "l_infinity"}},
                    "target_dataset": {"columnized_dataset": {
                        "bigquery_source": {"table_uri": training[1]}}}}}})
    monitor.delete()
    bare = ml_monitoring.ModelMonitor.create(
        model_name=model.resource_name, model_version_id=model.version_id,
        training_dataset=objective.MonitoringInput(table_uri=training[1]),
        tabular_objective_spec=objective.TabularObjective(
            feature_drift_spec=objective.DataDriftSpec()))
    with pytest.raises(exceptions.BadRequest, match="feature_fields"):
        bare.run(target_dataset=objective.MonitoringInput(table_uri=training[1]), sync=True)
    bare.delete()


def test_a_schedule_runs_monitoring_jobs(local_env, model, training, serving_tables):
    monitor = _monitor(model, training[1])
    schedule = monitor.create_schedule(
        cron="0 * * * *", display_name="hourly-drift",
        target_dataset=objective.MonitoringInput(table_uri=serving_tables[1]))
    assert [s.name for s in monitor.list_schedules()] == [schedule.name]
    deadline = time.monotonic() + 60
    jobs = []
    while time.monotonic() < deadline:  # locally a schedule's first run starts at once
        jobs = [j for j in monitor.list_jobs() if j.state.name == "JOB_STATE_SUCCEEDED"]
        if jobs:
            break
        time.sleep(0.5)
    assert jobs and jobs[0].schedule == schedule.name
    stats = monitor.search_metrics(schedule_name=schedule.name)
    assert {s.tabular_stats.stats_name for s in stats} == {"age", "colour"}
    assert all(p.schedule == schedule.name for s in stats for p in s.tabular_stats.data_points)
    monitor.pause_schedule(schedule.name)
    assert monitor.get_schedule(schedule.name).state.name == "PAUSED"
    monitor.update_schedule(schedule_name=schedule.name, cron="30 * * * *")
    assert monitor.get_schedule(schedule.name).cron == "30 * * * *"
    with pytest.raises(exceptions.BadRequest, match="schedule"):  # FAILED_PRECONDITION: 400
        monitor.delete()
    monitor.delete(force=True)  # takes its schedules, as on Vertex
    with pytest.raises(exceptions.NotFound):
        monitor.get_schedule(schedule.name)


def test_a_query_with_a_time_window_selects_recent_rows(local_env, model, training):
    """target: the rows of the last hour (timestamp_field + window="1h", as Google's sample
    sends it); the older rows, which match training, are not looked at."""
    rng = np.random.default_rng(2)
    now = pd.Timestamp.now(tz="UTC")
    recent = pd.DataFrame({"age": rng.normal(70, 5, 300).round(1), "colour": ["red"] * 300,
                           "ts": [now - pd.Timedelta(minutes=int(m))
                                  for m in rng.integers(1, 50, 300)]})
    old = pd.DataFrame({"age": rng.normal(40, 10, 300).round(1),
                        "colour": rng.choice(["red", "blue"], 300),
                        "ts": [now - pd.Timedelta(hours=int(h))
                               for h in rng.integers(3, 20, 300)]})
    dataset = f"{local_env.project}.mm2w_{uuid.uuid4().hex[:6]}"
    client = bigquery.Client()
    client.create_dataset(dataset)
    client.load_table_from_dataframe(pd.concat([recent, old]), f"{dataset}.served").result()
    monitor = _monitor(model, training[1])
    windowed = monitor.run(sync=True, target_dataset=objective.MonitoringInput(
        query=f"SELECT age, colour, ts FROM `{dataset}.served`", timestamp_field="ts",
        window="1h"))
    earlier = monitor.run(sync=True, target_dataset=objective.MonitoringInput(
        query=f"SELECT age, colour, ts FROM `{dataset}.served`", timestamp_field="ts",
        window="20h", offset="2h"))
    drift = {s.tabular_stats.stats_name: s.tabular_stats.data_points[0].has_anomaly
             for s in monitor.search_metrics(model_monitoring_job_name=windowed.resource_name)}
    calm = {s.tabular_stats.stats_name: s.tabular_stats.data_points[0].has_anomaly
            for s in monitor.search_metrics(model_monitoring_job_name=earlier.resource_name)}
    assert drift == {"age": True, "colour": True} and calm == {"age": False, "colour": False}
    with pytest.raises(exceptions.BadRequest, match="window"):
        monitor.api_client.create_model_monitoring_job(
            parent=monitor.resource_name, model_monitoring_job={"model_monitoring_spec": {
                "objective_spec": {"target_dataset": {
                    "columnized_dataset": {"bigquery_source": {"table_uri": training[1]},
                                           "timestamp_field": "ts"},
                    "time_offset": {"window": "an hour"}}}}})
    monitor.delete()
    client.delete_dataset(dataset, delete_contents=True)


def test_an_endpoints_logged_traffic_is_a_target(local_env, model, training):
    """vertex_endpoint_logs: the endpoint's request-response logging table, as Google's
    online-prediction sample monitors it (list instances map to the schema's features in
    order, a bare prediction to the first prediction field)."""
    endpoint = aiplatform.Endpoint.create(
        display_name=f"mm2-{uuid.uuid4().hex[:6]}", enable_request_response_logging=True,
        request_response_logging_sampling_rate=1.0,
        request_response_logging_bq_destination_table=f"bq://{local_env.project}")
    model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    try:
        ages = np.random.default_rng(3).normal(75, 5, 200).round(1)
        for chunk in np.array_split(ages, 4):
            endpoint.predict(instances=[[float(a)] for a in chunk])
        monitor = ml_monitoring.ModelMonitor.create(
            model_name=model.resource_name, model_version_id=model.version_id,
            training_dataset=objective.MonitoringInput(table_uri=training[1]),
            model_monitoring_schema=schema.ModelMonitoringSchema(
                feature_fields=[schema.FieldSchema(name="age", data_type="float")],
                prediction_fields=[schema.FieldSchema(name="label", data_type="categorical")]),
            tabular_objective_spec=objective.TabularObjective(
                feature_drift_spec=objective.DataDriftSpec(),
                prediction_output_drift_spec=objective.DataDriftSpec()))
        job = monitor.run(sync=True, target_dataset=objective.MonitoringInput(
            endpoints=[endpoint.resource_name], window="1h"))
        assert job.state.name == "JOB_STATE_SUCCEEDED"
        found = {(s.tabular_stats.stats_name, s.tabular_stats.objective_type):
                 s.tabular_stats.data_points[0]
                 for s in monitor.search_metrics(model_monitoring_job_name=job.resource_name)}
        assert set(found) == {("age", "raw-feature-drift"), ("label", "prediction-output-drift")}
        assert found[("age", "raw-feature-drift")].has_anomaly  # served ages ~75, trained ~40
        unlogged = aiplatform.Endpoint.create(display_name=f"mm2-{uuid.uuid4().hex[:6]}")
        with pytest.raises(RuntimeError, match="does not log requests"):
            monitor.run(sync=True, target_dataset=objective.MonitoringInput(
                endpoints=[unlogged.resource_name]))
        unlogged.delete()
        monitor.delete()
    finally:
        endpoint.undeploy_all()
        endpoint.delete()


def test_a_batch_prediction_jobs_output_is_a_target(local_env, model, training):
    blob = f"tests/monitoring-v2/{uuid.uuid4().hex[:8]}/instances.jsonl"
    ages = np.random.default_rng(4).normal(75, 5, 100).round(1)
    storage.Client().bucket(local_env.bucket).blob(blob).upload_from_string(
        "\n".join(json.dumps([float(a)]) for a in ages) + "\n")
    batch = model.batch_predict(
        job_display_name="mm2-batch", instances_format="jsonl",
        machine_type="n1-standard-2", gcs_source=[f"gs://{local_env.bucket}/{blob}"],
        gcs_destination_prefix=f"gs://{local_env.bucket}/{blob.rsplit('/', 1)[0]}/out",
        sync=True)
    monitor = ml_monitoring.ModelMonitor.create(
        model_name=model.resource_name, model_version_id=model.version_id,
        training_dataset=objective.MonitoringInput(table_uri=training[1]),
        model_monitoring_schema=schema.ModelMonitoringSchema(
            feature_fields=[schema.FieldSchema(name="age", data_type="float")],
            prediction_fields=[schema.FieldSchema(name="label", data_type="categorical")]),
        tabular_objective_spec=objective.TabularObjective(
            feature_drift_spec=objective.DataDriftSpec(),
            prediction_output_drift_spec=objective.DataDriftSpec()))
    job = monitor.run(sync=True, target_dataset=objective.MonitoringInput(
        batch_prediction_job=batch.resource_name))
    found = {s.tabular_stats.stats_name: s.tabular_stats.data_points[0]
             for s in monitor.search_metrics(model_monitoring_job_name=job.resource_name)}
    assert set(found) == {"age", "label"} and found["age"].has_anomaly
    monitor.delete()
