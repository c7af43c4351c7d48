"""Local Vertex AI serving: deploy to first prediction, online latency against calling
the same scikit-learn model directly, and a 10,000-row batch prediction job (smoke mode:
3 calls, 200 rows)."""

from __future__ import annotations

import io
import json
import statistics
import time
import uuid

import numpy as np

IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"
CALLS = 100
BATCH_ROWS = 10_000


def run(smoke: bool = False) -> list[dict]:
    import joblib
    from google.cloud import aiplatform, storage
    from sklearn.ensemble import RandomForestClassifier

    import labkit

    env = labkit.start()
    calls, batch_rows = (3, 200) if smoke else (CALLS, BATCH_ROWS)
    rng = np.random.default_rng(0)
    features = rng.random((2000, 8))
    labels = (features[:, 0] + features[:, 3] > 1).astype(int)
    model = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0)
    model.fit(features, labels)
    bucket = storage.Client().bucket(env.bucket)
    prefix = f"bench/vertex-{uuid.uuid4().hex[:8]}"
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    bucket.blob(f"{prefix}/model/model.joblib").upload_from_string(buffer.getvalue())

    created = []  # deleted at the end, even when a step fails: the workspace is reused
    try:
        return _measure(env, bucket, prefix, model, features, rng, calls, batch_rows, created)
    finally:
        for resource in reversed(created):
            try:
                if isinstance(resource, aiplatform.Endpoint):
                    resource.undeploy_all()
                resource.delete()
            except Exception as exc:  # the measurement's own error matters more
                print(f"bench_vertex: could not delete {resource.resource_name}: {exc}")
        for blob in bucket.list_blobs(prefix=prefix):
            blob.delete()


def _measure(env, bucket, prefix, model, features, rng, calls, batch_rows, created):
    from google.cloud import aiplatform

    rows = []
    start = time.perf_counter()
    registered = aiplatform.Model.upload(display_name="bench", artifact_uri=f"gs://{env.bucket}/"
                                         f"{prefix}/model", serving_container_image_uri=IMAGE)
    created.append(registered)
    endpoint = aiplatform.Endpoint.create(display_name="bench")
    created.append(endpoint)
    registered.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    endpoint.predict(instances=features[:1].tolist())
    rows.append({"name": "upload + create endpoint + deploy -> first prediction",
                 "value": time.perf_counter() - start, "unit": "s", "target": "< 2 s"})

    instance = features[:1].tolist()
    online, direct = [], []
    for _ in range(calls):
        t = time.perf_counter()
        endpoint.predict(instances=instance)
        online.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.predict(np.asarray(instance))
        direct.append(time.perf_counter() - t)
    rows.append({"name": f"endpoint.predict median latency ({calls} calls, 1 instance)",
                 "value": statistics.median(online) * 1000, "unit": "ms",
                 "baseline": statistics.median(direct) * 1000, "target": "ratio < 5x"})

    batch = rng.random((batch_rows, 8))
    bucket.blob(f"{prefix}/batch.jsonl").upload_from_string(
        "\n".join(json.dumps(r) for r in batch.tolist()))
    start = time.perf_counter()
    job = registered.batch_predict(
        job_display_name="bench", gcs_source=f"gs://{env.bucket}/{prefix}/batch.jsonl",
        gcs_destination_prefix=f"gs://{env.bucket}/{prefix}/out", instances_format="jsonl",
        machine_type="n1-standard-4")
    created.append(job)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    for chunk in range(0, batch_rows, 64):  # the same batches the job sends the model
        model.predict(batch[chunk:chunk + 64])
    rows.append({"name": f"batch prediction job, {batch_rows:,} rows gs:// JSONL -> JSONL",
                 "value": seconds, "unit": "s", "baseline": time.perf_counter() - start,
                 "target": "< 10 s"})
    return rows
