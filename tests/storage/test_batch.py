"""Cloud Storage's batch endpoint through google-cloud-storage's own Batch (what Beam's
gcsio uses to delete and copy), and its refusals of malformed batches."""

from __future__ import annotations

import uuid

import pytest
import requests
from google.api_core import exceptions
from google.cloud import storage

from labkit.workspace import Workspace


@pytest.fixture()
def bucket(local_env):
    client = storage.Client()
    bucket = client.create_bucket(f"batch-{uuid.uuid4().hex[:12]}", location="us-central1")
    yield bucket
    for blob in client.list_blobs(bucket):
        blob.delete()
    bucket.delete()


def test_batch_deletes_and_reports_each_call(bucket):
    client = storage.Client()
    bucket = client.bucket(bucket.name)  # calls made through this client join its batch
    names = [f"part-{i}.txt" for i in range(5)]
    for name in names:
        bucket.blob(name).upload_from_string(name)
    with client.batch():
        for name in names[:3]:
            bucket.blob(name).delete()
    assert sorted(b.name for b in client.list_blobs(bucket)) == names[3:]

    with pytest.raises(exceptions.NotFound):  # one missing object fails the batch's caller
        with client.batch():
            bucket.blob(names[3]).delete()
            bucket.blob("never-written.txt").delete()
    assert [b.name for b in client.list_blobs(bucket)] == names[4:]


def test_batch_copies(bucket):
    client = storage.Client()
    bucket = client.bucket(bucket.name)
    source = bucket.blob("source.txt")
    source.upload_from_string("payload")
    with client.batch():
        bucket.copy_blob(source, bucket, "copy-1.txt")
        bucket.copy_blob(source, bucket, "copy-2.txt")
    assert bucket.blob("copy-2.txt").download_as_text() == "payload"


def _post(local_env, body: bytes, content_type: str) -> requests.Response:
    token = Workspace.from_env().token
    return requests.post(f"{local_env.endpoint}/batch/storage/v1", data=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": content_type})


def _part(request_line: str) -> bytes:
    return (f"--b\r\nContent-Type: application/http\r\nContent-ID: <1>\r\n\r\n"
            f"{request_line}\r\n\r\n").encode()


def test_malformed_batches_are_400(local_env, bucket):
    line = f"DELETE /storage/v1/b/{bucket.name}/o/x HTTP/1.1"
    assert _post(local_env, _part(line) + b"--b--", "application/json").status_code == 400
    outside = _part("GET /bigquery/v2/projects/p/datasets HTTP/1.1") + b"--b--"
    response = _post(local_env, outside, "multipart/mixed; boundary=b")
    assert response.status_code == 200 and "HTTP/1.1 400" in response.text  # that call fails
    many = _part(line) * 101 + b"--b--"
    response = _post(local_env, many, "multipart/mixed; boundary=b")
    assert response.status_code == 400 and "at most 100" in response.json()["error"]["message"]
    garbage = b"--b\r\nContent-Type: application/http\r\n\r\nnot a request\r\n--b--"
    response = _post(local_env, garbage, "multipart/mixed; boundary=b")
    assert response.status_code == 200 and "HTTP/1.1 400" in response.text


def test_a_batch_needs_the_workspace_secret(local_env):
    response = requests.post(f"{local_env.endpoint}/batch/storage/v1", data=b"--b--",
                             headers={"Content-Type": "multipart/mixed; boundary=b"},
                             timeout=30)
    assert response.status_code == 401
