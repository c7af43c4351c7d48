"""A bounded, seeded fuzz of every service: malformed requests get a 4xx in the
service's error shape, never a 5xx (which Google's clients retry for minutes) or a
dropped connection, and the services stay healthy.

Before: bad matchGlob, NUL in object names, wrong JSON types, deeply nested JSON,
pageSize=abc, non-ASCII page tokens and non-UTF-8 token requests were 500s.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import requests

SEED = int(os.environ.get("FUZZ_SEED", "20261201"))
REQUESTS = 300

JUNK = ["..%2F..%2Ftoken", "%00", "%2e%2e", "a" * 1500, "%FF%FE", "%E2%80%AE", "x%0Ay",
        "-1", "", "%2F", "\u00e9", "12345678901234567890123", "[", "{a,b", "*"]
QUERY_JUNK = ["pageSize=abc", "pageSize=-3", "maxResults=1e9", "maxResults=abc",
              "pageToken=%C3%A9%FF", "pageToken=!!!!", "matchGlob=%5B", "matchGlob=%7Ba",
              "prefix=..%2F..%2F", "alt=media", "uploadType=bogus", "startIndex=x",
              "filter=%22", "updateMask=%00", "readMask=%FF", "generation=abc",
              "ifGenerationMatch=zz", "timeoutMs=abc", "maxResults=-5"]
BODIES = [b"{", b"[]", b"5", b'{"name": 5}', b'{"name": ["x"]}', b'{"labels": "x"}',
          b'{"metadata": {"k": 5}}', b"[" * 50000 + b"]" * 50000, b"\xff\xfe\x00",
          b'{"displayName": 7, "containerSpec": "x"}', b'{"query": 5}',
          b'{"configuration": {"query": {"query": ["SELECT 1"]}}}',
          b'{"jobReference": {"projectId": "../../x", "jobId": "../../y"}}',
          b'{"tableReference": {"projectId": 1}}', b'{"sourceObjects": [5]}',
          b'{"destination": {"contentType": 9}}', b'{"name": "\\u0000"}', b""]
TEMPLATES = [
    ("GET", "/storage/v1/b/{bucket}/o"), ("GET", "/storage/v1/b/{bucket}/o/{junk}"),
    ("POST", "/storage/v1/b"), ("PATCH", "/storage/v1/b/{bucket}"),
    ("POST", "/upload/storage/v1/b/{bucket}/o"), ("PUT", "/upload/storage/v1/b/{bucket}/o"),
    ("POST", "/storage/v1/b/{bucket}/o/{junk}/compose"),
    ("POST", "/storage/v1/b/{bucket}/o/{junk}/copyTo/b/{bucket}/o/{junk}"),
    ("GET", "/bigquery/v2/projects/{project}/datasets"),
    ("POST", "/bigquery/v2/projects/{project}/datasets"),
    ("POST", "/bigquery/v2/projects/{project}/queries"),
    ("POST", "/bigquery/v2/projects/{project}/jobs"),
    ("GET", "/bigquery/v2/projects/{project}/jobs/{junk}"),
    ("GET", "/bigquery/v2/projects/{project}/queries/{junk}"),
    ("GET", "/bigquery/v2/projects/{project}/datasets/{junk}/tables"),
    ("POST", "/bigquery/v2/projects/{project}/datasets/{junk}/tables/{junk}/insertAll"),
    ("GET", "/v1/projects/{project}/locations/us-central1/models"),
    ("POST", "/v1/projects/{project}/locations/us-central1/models:upload"),
    ("GET", "/v1/projects/{project}/locations/us-central1/models/{junk}"),
    ("POST", "/v1/projects/{project}/locations/us-central1/endpoints"),
    ("GET", "/v1/projects/{project}/locations/us-central1/endpoints/{junk}"),
    ("POST", "/v1/projects/{project}/locations/us-central1/endpoints/{junk}:predict"),
    ("GET", "/v1/projects/{project}/locations/us-central1/customJobs"),
    ("POST", "/v1/projects/{project}/locations/us-central1/customJobs"),
    ("GET", "/v1/projects/{project}/locations/us-central1/tensorboards/{junk}"),
    ("DELETE", "/v1/projects/{project}/locations/us-central1/tensorboards/{junk}"),
    ("POST", "/v1/projects/{project}/locations/us-central1/pipelineJobs"),
    ("GET", "/v1/projects/{project}/locations/us-central1/pipelineJobs"),
    ("POST", "/v1/projects/{project}/locations/us-central1/metadataStores/default/contexts"),
    ("GET", "/v1/projects/{project}/locations/us-central1/batchPredictionJobs/{junk}"),
    ("POST", "/labkit/token"), ("GET", "/labkit/health"),
]


def test_malformed_requests_never_get_a_5xx(local_env):
    rng = random.Random(SEED)
    token = (local_env.workspace / "token").read_text().strip()
    session = requests.Session()
    failures = []
    started = time.monotonic()
    for _ in range(REQUESTS):
        method, template = rng.choice(TEMPLATES)
        path = template.format(bucket=rng.choice([local_env.bucket, rng.choice(JUNK)]),
                               project=rng.choice([local_env.project, rng.choice(JUNK)]),
                               junk=rng.choice(JUNK))
        query = "&".join(rng.sample(QUERY_JUNK, rng.randint(0, 3)))
        body = rng.choice(BODIES)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if rng.random() < 0.1:
            headers["Content-Type"] = "multipart/related; boundary=x"
        url = f"{local_env.endpoint}{path}" + (f"?{query}" if query else "")
        try:
            answer = session.request(method, url, data=body, headers=headers, timeout=60)
        except requests.ConnectionError as exc:
            failures.append((method, url[:200], "dropped", str(exc)[:200]))
            session = requests.Session()
            continue
        if answer.status_code >= 500:
            failures.append((method, url[:200], answer.status_code, answer.text[:300]))
        elif answer.status_code >= 400:
            try:
                assert "error" in answer.json()
            except (ValueError, AssertionError):
                failures.append((method, url[:200], answer.status_code, "not JSON",
                                 answer.text[:200]))
    elapsed = time.monotonic() - started
    if failures and os.environ.get("FUZZ_REPORT"):
        Path(os.environ["FUZZ_REPORT"]).write_text(json.dumps(failures, indent=1, default=str))
    assert not failures, json.dumps(failures, indent=1, default=str)
    health = session.get(f"{local_env.endpoint}/labkit/health",
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert health.status_code == 200
    print(f"{REQUESTS} malformed requests in {elapsed:.1f} s")
