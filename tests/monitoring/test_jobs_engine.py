"""The monitoring engine without HTTP: hooks feed traffic, analysis finds skew and drift,
thresholds decide anomalies, alerts go to the email outbox and the Cloud Logging file."""

from __future__ import annotations

import csv
import io
import json
import time

import numpy as np
import pytest

from labkit.storage import local_path
from labkit.vertex import errors
from labkit.vertex.monitoring import hooks
from labkit.vertex.monitoring.engine import MonitoringJobs
from labkit.vertex.store import ResourceStore
from labkit.workspace import Workspace

PARENT = "projects/p/locations/us-central1"
ENDPOINT = f"{PARENT}/endpoints/123"


@pytest.fixture()
def workspace(tmp_path):
    ws = Workspace(tmp_path)
    ResourceStore(ws).put("endpoints", "123", {"name": ENDPOINT, "displayName": "e",
                                               "deployedModels": [{"id": "55"}]})
    rng = np.random.default_rng(0)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["age", "colour", "label"])
    for _ in range(2000):
        writer.writerow([round(float(rng.normal(40, 10)), 1), rng.choice(["red", "blue"]), 1])
    local_path("gs://monitoring-data/train.csv", ws).write_text(out.getvalue())
    return ws


def job_body(**objective):
    return {"displayName": "m", "endpoint": ENDPOINT,
            "modelDeploymentMonitoringObjectiveConfigs": [
                {"deployedModelId": "55", "objectiveConfig": {
                    "trainingDataset": {"gcsSource": {"uris": ["gs://monitoring-data/train.csv"]},
                                        "dataFormat": "csv", "targetField": "label"},
                    **objective}}],
            "modelMonitoringAlertConfig": {"emailAlertConfig": {"userEmails": ["a@b.c"]},
                                           "enableLogging": True},
            "modelDeploymentMonitoringScheduleConfig": {"monitorInterval": "3600s"}}


def traffic(jobs, n, age_mean, colours, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        instance = {"age": round(float(rng.normal(age_mean, 10)), 1),
                    "colour": str(rng.choice(colours))}
        jobs.record(ENDPOINT, "55", [instance], [0.5])


def test_skew_and_drift_with_thresholds_and_alerts(workspace):
    jobs = MonitoringJobs(ResourceStore(workspace), workspace, startup_s=0)
    job = jobs.create(PARENT, job_body(
        trainingPredictionSkewDetectionConfig={"skewThresholds": {"age": {"value": 0.3},
                                                                  "colour": {"value": 0.9}}},
        predictionDriftDetectionConfig={}))
    job_id = job["name"].rsplit("/", 1)[-1]
    assert job["state"] == "JOB_STATE_PENDING"  # as Vertex answers a create
    assert jobs.get(PARENT, job_id)["state"] == "JOB_STATE_RUNNING"  # startup_s=0
    assert job["bigqueryTables"][0]["bigqueryTablePath"] == (
        "bq://p.model_deployment_monitoring_123.serving_predict")

    traffic(jobs, 300, 40, ["red", "blue"], seed=1)
    first = jobs.analyze(job_id)
    assert first["count"] == 300
    skew = {r["feature"]: r for r in first["results"] if r["objective"] == "RAW_FEATURE_SKEW"}
    assert set(skew) == {"age", "colour"}  # the label column is not a feature
    assert not any(r["anomaly"] for r in first["results"])
    assert not [r for r in first["results"] if r["objective"] == "RAW_FEATURE_DRIFT"]

    # a restart of the services: state, windows and the drift baseline come from the files
    jobs = MonitoringJobs(ResourceStore(workspace), workspace, startup_s=0)
    traffic(jobs, 300, 70, ["red"], seed=2)
    second = jobs.analyze(job_id)
    assert second["count"] == 300  # analysed traffic was pruned from the record
    found = {(r["objective"], r["feature"]): r for r in second["results"]}
    assert found[("RAW_FEATURE_SKEW", "age")]["anomaly"]
    # colour went from a red/blue half split to all red (L-inf 0.5) but its threshold
    # is 0.9; drift uses the default 0.3 for every feature.
    assert found[("RAW_FEATURE_SKEW", "colour")]["distance"] == pytest.approx(
        0.5, abs=0.05)
    assert not found[("RAW_FEATURE_SKEW", "colour")]["anomaly"]
    assert found[("RAW_FEATURE_DRIFT", "colour")]["threshold"] == 0.3
    assert found[("RAW_FEATURE_DRIFT", "colour")]["anomaly"]

    answer = jobs.search(PARENT, job_id, {"deployedModelId": "55",
                                          "objectives": [{"type": 1}, {"type": 2}]})
    by_objective = {s["objective"]: s for s in answer["monitoringStats"]}
    age = next(f for f in by_objective["RAW_FEATURE_SKEW"]["featureStats"]
               if f["featureDisplayName"] == "age")
    assert len(age["predictionStats"]) == 2  # newest first
    assert age["predictionStats"][0]["distributionDeviation"] > 0.3 > age[
        "predictionStats"][1]["distributionDeviation"]
    assert by_objective["RAW_FEATURE_DRIFT"]["anomalyCount"] == 2

    mail = [json.loads(line) for line in
            (workspace.root / "logs" / "monitoring-email-outbox.jsonl").read_text().splitlines()]
    assert len(mail) == 1 and mail[0]["to"] == ["a@b.c"]
    entries = [json.loads(line) for line in
               (workspace.root / "logs" / "model-monitoring.jsonl").read_text().splitlines()]
    assert {e["jsonPayload"]["featureDisplayName"] for e in entries} == {"age", "colour"}
    assert all(e["severity"] == "WARNING" and e["resource"]["type"].endswith(
        "ModelDeploymentMonitoringJob") for e in entries)


def test_paused_jobs_record_nothing_and_sampling_thins_traffic(workspace):
    jobs = MonitoringJobs(ResourceStore(workspace), workspace, startup_s=0)
    body = job_body(trainingPredictionSkewDetectionConfig={})
    body["loggingSamplingStrategy"] = {"randomSampleConfig": {"sampleRate": 0.25}}
    job_id = jobs.create(PARENT, body)["name"].rsplit("/", 1)[-1]
    jobs.pause(PARENT, job_id)
    traffic(jobs, 100, 40, ["red"], seed=3)
    assert jobs.analyze(job_id)["count"] == 0
    jobs.resume(PARENT, job_id)
    traffic(jobs, 2000, 40, ["red"], seed=4)
    assert 380 < jobs.analyze(job_id)["count"] < 620


def test_bad_requests_get_vertex_errors_and_store_nothing(workspace):
    jobs = MonitoringJobs(ResourceStore(workspace), workspace, startup_s=0)
    bad = job_body()
    bad["modelDeploymentMonitoringObjectiveConfigs"][0]["deployedModelId"] = "999"
    with pytest.raises(errors.VertexError, match="not deployed"):
        jobs.create(PARENT, bad)
    short = job_body()
    short["modelDeploymentMonitoringScheduleConfig"]["monitorInterval"] = "60s"
    with pytest.raises(errors.VertexError, match="at least 1 hour"):
        jobs.create(PARENT, short)
    assert jobs.list(PARENT, {})["modelDeploymentMonitoringJobs"] == []
    jobs.create(PARENT, job_body())
    with pytest.raises(errors.VertexError) as caught:
        jobs.create(PARENT, job_body())
    assert caught.value.status == 409


def test_after_predict_never_raises_and_names_logging_tables(workspace, capsys):
    hooks.after_predict(None, {"bad": "endpoint"}, "1", [[1]], [0])
    assert "after_predict hook failed" in capsys.readouterr().err
    endpoint = {"name": ENDPOINT, "displayName": "census web",
                "predictRequestResponseLoggingConfig": {"enabled": True,
                                                        "bigqueryDestination": {
                                                            "outputUri": "bq://p"}}}
    assert hooks.logging_table(endpoint) == "p.logging_census_web_123.request_response_logging"
    endpoint["predictRequestResponseLoggingConfig"]["bigqueryDestination"]["outputUri"] = (
        "bq://p.d.t")
    assert hooks.logging_table(endpoint) == "p.d.t"


def test_the_instance_schema_names_and_types_array_features(workspace):
    local_path("gs://monitoring-data/schema.yaml", workspace).write_text(
        "type: object\nproperties:\n  age:\n    type: number\n  colour:\n    type: string\n")
    jobs = MonitoringJobs(ResourceStore(workspace), workspace, startup_s=0)
    body = job_body(trainingPredictionSkewDetectionConfig={})
    body["analysisInstanceSchemaUri"] = "gs://monitoring-data/schema.yaml"
    job_id = jobs.create(PARENT, body)["name"].rsplit("/", 1)[-1]
    rng = np.random.default_rng(6)
    for age, colour in zip(rng.normal(40, 10, 300).round(1), rng.choice(["red", "blue"], 300),
                           strict=True):
        jobs.record(ENDPOINT, "55", [[str(age), str(colour)]], [0.5])  # numbers as strings
    run = jobs.analyze(job_id)
    found = {r["feature"]: r for r in run["results"]}
    assert found["age"]["stats"]["type"] == "numeric"
    assert not found["age"]["anomaly"] and not found["colour"]["anomaly"]


def test_a_new_job_is_pending_and_drops_traffic_until_running(workspace):
    """Vertex starts a monitoring job PENDING; requests before it is RUNNING are not logged."""
    jobs = MonitoringJobs(ResourceStore(workspace), workspace, startup_s=0.5)
    job = jobs.create(PARENT, job_body(predictionDriftDetectionConfig={}))
    job_id = job["name"].rsplit("/", 1)[-1]
    assert job["state"] == "JOB_STATE_PENDING"
    traffic(jobs, 20, 40, ["red"], seed=3)  # dropped
    time.sleep(0.6)
    assert jobs.get(PARENT, job_id)["state"] == "JOB_STATE_RUNNING"
    traffic(jobs, 7, 40, ["red"], seed=4)
    assert jobs.analyze(job_id)["count"] == 7
