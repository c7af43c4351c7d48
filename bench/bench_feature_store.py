"""Vertex AI Feature Store: a feature view's sync from BigQuery, then online
fetch_feature_values latency through the SDK (FeatureView.read) against a Python dict lookup
of the same values (smoke mode: 50 entities, 5 fetches)."""

from __future__ import annotations

import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

ENTITIES = 10_000
FETCHES = 500


def run(smoke: bool = False) -> list[dict]:
    from google.cloud import bigquery
    from vertexai.resources.preview import feature_store as fs

    import labkit

    labkit.start()
    entities, fetches = (50, 5) if smoke else (ENTITIES, FETCHES)
    client = bigquery.Client()
    dataset = f"bench_fs_{uuid.uuid4().hex[:8]}"
    client.create_dataset(dataset)
    created = []
    try:
        rows = _load(client, f"{client.project}.{dataset}.users", entities)
        group = fs.FeatureGroup.create(f"bench_{uuid.uuid4().hex[:8]}",
                                       source=fs.FeatureGroupBigQuerySource(
                                           uri=f"bq://{client.project}.{dataset}.users",
                                           entity_id_columns=["entity_id"]))
        created.append(group)
        for name in ("age", "score", "city"):
            group.create_feature(name)
        store = fs.FeatureOnlineStore.create_optimized_store(f"bench_{uuid.uuid4().hex[:8]}")
        created.append(store)
        view = store.create_feature_view("users", fs.FeatureViewRegistrySource(
            features=[f"{group.name}.{f}" for f in ("age", "score", "city")]))
        start = time.perf_counter()
        sync = view.sync()
        sync_s = time.perf_counter() - start
        assert sync.gca_resource.sync_summary.row_synced == entities, sync.gca_resource
        latest = {r["entity_id"]: r for r in rows}  # the day-1 rows are the latest

        keys = [f"u{random.randrange(entities)}" for _ in range(fetches)]
        view.read(key=[keys[0]])  # the SDK's first read looks up the store's endpoint
        online, direct = [], []
        for k in keys:
            t = time.perf_counter()
            answer = view.read(key=[k]).to_dict()
            online.append(time.perf_counter() - t)
            t = time.perf_counter()
            expected = latest[k]
            direct.append(time.perf_counter() - t)
            age = next(f for f in answer["features"] if f["name"] == "age")
            assert int(age["value"]["int64_value"]) == expected["age"], (answer, expected)
        kept = _kept_client()  # one client, its connection reused
        reused = []
        for k in keys:
            t = time.perf_counter()
            kept.fetch_feature_values(feature_view=view.resource_name, data_key={"key": k})
            reused.append(time.perf_counter() - t)
        wire = _wire_fetches(view.resource_name, keys)
        p50, p95 = statistics.median(online), _p95(online)
        base = statistics.median(direct)
        return [
            {"name": f"feature view sync ({entities} entities x 2 rows, 3 features)",
             "value": sync_s, "unit": "s"},
            {"name": f"FeatureView.read p50 ({fetches} fetches)", "value": p50 * 1000,
             "unit": "ms", "baseline": base * 1000, "ratio": p50 / base, "target": "< 5 ms"},
            {"name": f"FeatureView.read p95 ({fetches} fetches)", "value": p95 * 1000,
             "unit": "ms", "baseline": _p95(direct) * 1000, "ratio": p95 / _p95(direct)},
            {"name": f"FeatureOnlineStoreServiceClient.fetch_feature_values p50, one client "
                     f"kept ({fetches} fetches)", "value": statistics.median(reused) * 1000,
             "unit": "ms", "baseline": base * 1000,
             "ratio": statistics.median(reused) / base, "target": "< 5 ms"},
            {"name": f"POST :fetchFeatureValues p50 over one HTTP connection, no client "
                     f"library ({fetches} fetches): the service's own latency",
             "value": statistics.median(wire) * 1000, "unit": "ms", "baseline": base * 1000,
             "ratio": statistics.median(wire) / base, "target": "< 5 ms"},
        ]
    finally:
        for resource in reversed(created):
            try:
                resource.delete(force=True)
            except Exception as exc:  # the measurement's own error matters more
                print(f"bench_feature_store: could not delete {resource.resource_name}: {exc}")
        client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def _kept_client():
    """The v1 serving client made once. FeatureView.read goes through the SDK's
    FeatureOnlineStoreClientWithOverride, which builds a new GAPIC client (and connection)
    for every call, on Google Cloud as here."""
    from google.cloud import aiplatform_v1
    from google.cloud.aiplatform import initializer

    config = initializer.global_config
    return aiplatform_v1.FeatureOnlineStoreServiceClient(
        credentials=config.credentials, transport="rest",
        client_options={"api_endpoint": config.api_endpoint})


def _wire_fetches(view: str, keys: list[str]) -> list[float]:
    """The same fetches as plain HTTP requests on one kept connection (what the service
    costs, without the client library's own work)."""
    import http.client
    import json
    from urllib.parse import urlsplit

    from google.cloud.aiplatform import initializer

    from labkit.workspace import Workspace

    url = urlsplit(initializer.global_config.api_endpoint)
    headers = {"Authorization": f"Bearer {Workspace.from_env().token}",
               "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(url.hostname, url.port)
    times = []
    try:
        for k in keys:
            t = time.perf_counter()
            connection.request("POST", f"/v1/{view}:fetchFeatureValues", headers=headers,
                               body=json.dumps({"dataKey": {"key": k}}))
            answer = connection.getresponse()
            body = answer.read()
            times.append(time.perf_counter() - t)
            assert answer.status == 200, body
    finally:
        connection.close()
    return times


def _load(client, table: str, entities: int) -> list[dict]:
    from google.cloud import bigquery

    rng = random.Random(0)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [{"entity_id": f"u{i}", "feature_timestamp": (t0 + timedelta(days=day)).isoformat(),
             "age": rng.randrange(18, 90), "score": rng.random(),
             "city": rng.choice(["Paris", "Lyon", "Nice"])}
            for day in (0, 1) for i in range(entities)]
    client.load_table_from_json(rows, table, job_config=bigquery.LoadJobConfig(schema=[
        bigquery.SchemaField("entity_id", "STRING"),
        bigquery.SchemaField("feature_timestamp", "TIMESTAMP"),
        bigquery.SchemaField("age", "INT64"), bigquery.SchemaField("score", "FLOAT64"),
        bigquery.SchemaField("city", "STRING")])).result()
    return rows


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
