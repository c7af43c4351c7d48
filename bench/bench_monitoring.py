"""Model monitoring and explanations: the after_predict hook's cost on the predict path,
one monitoring analysis over 100,000 logged requests (against computing the same distances
on columns already in memory), and explanation latency per instance (against one direct
predict of the same pipeline).

Runs the engines in a temporary workspace (no HTTP; BigQuery logging off, since it happens
off the predict path and outside the analysis). Smoke mode: 1,000 requests over 1,000
training rows, 2 explained instances."""

from __future__ import annotations

import csv
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

REQUESTS = 100_000
TRAINING_ROWS = 20_000
SMOKE = {"requests": 1000, "training_rows": 1000, "explain_rows": 500, "instances": 2}
FULL = {"requests": REQUESTS, "training_rows": TRAINING_ROWS, "explain_rows": 5000,
        "instances": 20}
NUMERIC = ["age", "hours_per_week", "education_num", "capital_gain", "capital_loss",
           "functional_weight"]
CATEGORICAL = {"workclass": 6, "marital_status": 5, "occupation": 12, "relationship": 6,
               "race": 5, "sex": 2}
PARENT = "projects/bench/locations/us-central1"
ENDPOINT = f"{PARENT}/endpoints/1"


def _rows(rng, n: int, shift: float = 0.0) -> list[list]:
    numeric = rng.normal(40 + shift, 10, (n, len(NUMERIC))).round(1)
    cats = [rng.integers(0, k, n) for k in CATEGORICAL.values()]
    return [list(map(float, numeric[i])) + [f"{name}_{c[i]}" for name, c in
                                            zip(CATEGORICAL, cats, strict=True)]
            for i in range(n)]


def _analysis(tmp: Path, requests: int, training_rows: int) -> list[dict]:
    from labkit.storage import local_path
    from labkit.vertex.monitoring import hooks, stats
    from labkit.vertex.monitoring.engine import MonitoringJobs
    from labkit.vertex.store import ResourceStore
    from labkit.workspace import Workspace

    workspace = Workspace(tmp)
    ResourceStore(workspace).put("endpoints", "1", {"name": ENDPOINT, "displayName": "bench",
                                                    "deployedModels": [{"id": "7"}]})
    names = NUMERIC + list(CATEGORICAL)
    rng = np.random.default_rng(0)
    training = _rows(rng, training_rows)
    out = io.StringIO()
    csv.writer(out).writerows([names] + training)
    local_path("gs://bench/train.csv", workspace).write_text(out.getvalue())
    jobs = MonitoringJobs(ResourceStore(workspace), workspace, startup_s=0)  # RUNNING at once
    job = jobs.create(PARENT, {
        "displayName": "bench", "endpoint": ENDPOINT,
        "modelDeploymentMonitoringObjectiveConfigs": [{"deployedModelId": "7", "objectiveConfig": {
            "trainingDataset": {"gcsSource": {"uris": ["gs://bench/train.csv"]},
                                "dataFormat": "csv"},
            "trainingPredictionSkewDetectionConfig": {},
            "predictionDriftDetectionConfig": {}}}]})
    job_id = job["name"].rsplit("/", 1)[-1]
    endpoint = {"name": ENDPOINT, "displayName": "bench"}
    served = _rows(rng, requests, shift=5.0)
    costs = []
    for instance in served:
        t = time.perf_counter()
        hooks.after_predict(jobs, endpoint, "7", [instance], [0.5])
        costs.append(time.perf_counter() - t)
    jobs.log.flush()
    jobs.analyze(job_id)  # loads and caches the training data, as the first scheduled run does
    for instance in served:
        jobs.record(ENDPOINT, "7", [instance], [0.5])
    jobs.log.flush()
    t = time.perf_counter()
    run = jobs.analyze(job_id)
    analysis = time.perf_counter() - t
    assert run["count"] == requests, run
    training_columns = [list(c) for c in zip(*training, strict=True)]
    served_columns = [list(c) for c in zip(*served, strict=True)]
    t = time.perf_counter()
    for k in range(len(names)):  # the same distances on columns already in memory
        for reference in (training_columns[k], served_columns[k]):
            stats.compare(reference, served_columns[k])
    direct = time.perf_counter() - t
    return [
        {"name": "after_predict hook on the predict path (median, 1 instance)",
         "value": statistics.median(costs) * 1e6, "unit": "us", "target": "< 1000 us"},
        {"name": f"monitoring analysis, {requests:,} logged requests x {len(names)} features "
                 f"(skew + drift)", "value": analysis, "unit": "s", "baseline": direct,
         "target": "< 10 s"},
    ]


def _explain(explain_rows: int, count: int) -> list[dict]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from labkit.vertex.monitoring import explain

    rng = np.random.default_rng(1)
    rows = _rows(rng, explain_rows)
    labels = [float(r[0] > 40 and r[6].endswith("_1")) for r in rows]
    k = len(NUMERIC)
    pipeline = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), list(range(k))),
                           ("cat", OneHotEncoder(handle_unknown="ignore"),
                            list(range(k, k + len(CATEGORICAL))))]),
        RandomForestRegressor(n_estimators=30, max_depth=8, random_state=0, n_jobs=1))
    pipeline.fit(np.asarray(rows, dtype=object), labels)

    def predict(instances):
        return pipeline.predict(np.asarray(instances)).tolist()

    names = NUMERIC + list(CATEGORICAL)
    spec = {"parameters": {"sampledShapleyAttribution": {"pathCount": 10}},
            "metadata": {"inputs": {"x": {"indexFeatureMapping": names,
                                          "inputBaselines": [rows[0]]}}}}
    instances = rows[1:1 + count]
    predictions = predict(instances)
    t = time.perf_counter()
    explain.attribute(spec, instances, predictions, predict)
    shapley = (time.perf_counter() - t) / len(instances)
    t = time.perf_counter()
    for instance in instances:
        predict([instance])
    direct = (time.perf_counter() - t) / len(instances)
    ig_spec = {"parameters": {"integratedGradientsAttribution": {"stepCount": 50}},
               "metadata": {"inputs": {"x": {"indexFeatureMapping": NUMERIC}}}}

    def numeric_predict(instances):
        return [float(np.tanh(np.dot(r, np.linspace(-1, 1, k)) / 100)) for r in instances]

    numeric = [r[:k] for r in instances]
    t = time.perf_counter()
    explain.attribute(ig_spec, numeric, numeric_predict(numeric), numeric_predict)
    ig = (time.perf_counter() - t) / len(numeric)
    return [
        {"name": "explain: sampled Shapley, path_count 10, 12 features, per instance "
                 "(sklearn pipeline)", "value": shapley * 1000, "unit": "ms",
         "baseline": direct * 1000, "target": "< 50 ms"},
        {"name": "explain: integrated gradients (finite differences), step_count 50, 6 "
                 "features, per instance", "value": ig * 1000, "unit": "ms",
         "target": "< 50 ms"},
    ]


def run(smoke: bool = False) -> list[dict]:
    sizes = SMOKE if smoke else FULL
    with tempfile.TemporaryDirectory() as tmp:
        rows = _analysis(Path(tmp), sizes["requests"], sizes["training_rows"])
    return rows + _explain(sizes["explain_rows"], sizes["instances"])


if __name__ == "__main__":
    for row in run():
        print(row)
