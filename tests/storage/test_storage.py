"""The local Cloud Storage through the real google-cloud-storage client."""

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions
from google.cloud import storage

from labkit.storage import local_path
from labkit.workspace import Workspace


@pytest.fixture(scope="module")
def client(local_env):
    return storage.Client(project=local_env.project)


@pytest.fixture()
def bucket(client):
    bucket = client.create_bucket(f"test-{uuid.uuid4().hex[:12]}", location="us-central1")
    yield bucket
    for blob in client.list_blobs(bucket):
        blob.delete()
    bucket.delete()


def test_default_bucket_exists(client, local_env):
    assert client.get_bucket(local_env.bucket).name == local_env.bucket


def test_bucket_lifecycle(client):
    name = f"test-{uuid.uuid4().hex[:12]}"
    bucket = client.create_bucket(name, location="us-central1")
    assert bucket.location == "US-CENTRAL1"
    assert name in [b.name for b in client.list_buckets()]
    with pytest.raises(exceptions.Conflict):
        client.create_bucket(name)
    bucket.labels = {"team": "ml"}
    bucket.patch()
    assert client.get_bucket(name).labels == {"team": "ml"}
    bucket.blob("x.txt").upload_from_string("x")
    with pytest.raises(exceptions.Conflict, match="not empty"):
        bucket.delete()
    bucket.delete(force=True)
    with pytest.raises(exceptions.NotFound):
        client.get_bucket(name)
    with pytest.raises(exceptions.BadRequest, match="Invalid bucket name"):
        client.create_bucket("Upper-Case-Bucket")


def test_upload_kinds_and_download(bucket):
    small = bucket.blob("data/small.csv")
    small.upload_from_string("a,b\n1,2\n", content_type="text/csv")
    assert small.download_as_text() == "a,b\n1,2\n"
    big = bucket.blob("data/big.bin")
    big.chunk_size = 256 * 1024  # forces the resumable protocol in several chunks
    payload = uuid.uuid4().bytes * 40_000  # 640 KB
    big.upload_from_string(payload)
    assert big.download_as_bytes() == payload
    assert big.download_as_bytes(start=10, end=19) == payload[10:20]
    meta = bucket.get_blob("data/small.csv")
    assert meta.size == 8 and meta.content_type == "text/csv" and meta.md5_hash
    meta.metadata = {"owner": "lab"}
    meta.patch()
    assert bucket.get_blob("data/small.csv").metadata == {"owner": "lab"}


def test_local_path_is_the_object(bucket):
    bucket.blob("nested/dir/file.txt").upload_from_string("hello")
    path = local_path(f"gs://{bucket.name}/nested/dir/file.txt", Workspace.from_env())
    assert path.read_text() == "hello"
    # files written directly (by training or a BigQuery export) are objects too
    local_path(f"gs://{bucket.name}/written/here.txt", Workspace.from_env()).write_text("direct")
    blob = bucket.get_blob("written/here.txt")
    assert blob.size == 6 and blob.download_as_text() == "direct"


def test_listing_prefix_delimiter_pages(client, bucket):
    names = [f"p/{i:02d}.txt" for i in range(7)] + ["p/sub/a.txt", "q.txt"]
    for name in names:
        bucket.blob(name).upload_from_string(name)
    listed = [b.name for b in client.list_blobs(bucket, prefix="p/", max_results=100)]
    assert listed == sorted(n for n in names if n.startswith("p/"))
    iterator = client.list_blobs(bucket, prefix="p/", delimiter="/", page_size=3)
    top = [b.name for b in iterator]
    assert top == [f"p/{i:02d}.txt" for i in range(7)]
    assert iterator.prefixes == {"p/sub/"}
    assert [b.name for b in client.list_blobs(bucket, delimiter="/")] == ["q.txt"]
    globbed = [b.name for b in client.list_blobs(bucket, match_glob="p/**/{a,05}.txt")]
    assert globbed == ["p/05.txt", "p/sub/a.txt"]
    assert [b.name for b in client.list_blobs(bucket, match_glob="p/0[0-1].txt")] == [
        "p/00.txt", "p/01.txt"]


def test_copy_rewrite_compose_delete(bucket):
    bucket.blob("a").upload_from_string("AAA")
    bucket.blob("b").upload_from_string("BB")
    copied = bucket.copy_blob(bucket.blob("a"), bucket, "c")
    assert copied.download_as_text() == "AAA"
    token, written, total = bucket.blob("d").rewrite(bucket.blob("b"))
    assert token is None and written == total == 2
    composed = bucket.blob("ab")
    composed.compose([bucket.blob("a"), bucket.blob("b")])
    assert composed.download_as_text() == "AAABB"
    bucket.blob("a").delete()
    with pytest.raises(exceptions.NotFound, match=f"No such object: {bucket.name}/a"):
        bucket.blob("a").download_as_bytes()
    with pytest.raises(exceptions.NotFound):
        bucket.blob("a").delete()


def test_generation_preconditions(bucket):
    blob = bucket.blob("g.txt")
    blob.upload_from_string("one", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("g.txt").upload_from_string("two", if_generation_match=0)
    current = bucket.get_blob("g.txt")
    bucket.blob("g.txt").upload_from_string("two", if_generation_match=current.generation)
    assert bucket.blob("g.txt").download_as_text() == "two"


def test_missing_bucket_and_the_workspace_secret(client, local_env):
    with pytest.raises(exceptions.NotFound, match="bucket does not exist"):
        client.bucket("no-such-bucket-here").blob("x").upload_from_string("x")
    import requests

    # the workspace token is accepted as well as the key in the client's URL; nothing else
    token = (local_env.workspace / "token").read_text().strip()
    url = f"{local_env.endpoint}/storage/v1/b/{local_env.bucket}"
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert requests.get(url).status_code == 401
    assert requests.get(url, headers={"Origin": "http://evil.example"}).status_code == 403


def test_gcs_mount_form(bucket):
    """Vertex's /gcs/BUCKET/... form reaches the same file where /gcs can be created."""
    import os

    from labkit.storage import mount_path

    bucket.blob("fuse/x.txt").upload_from_string("fuse")
    path = mount_path(f"gs://{bucket.name}/fuse/x.txt", Workspace.from_env())
    if os.access("/", os.W_OK) or os.path.isdir("/gcs"):
        assert str(path) == f"/gcs/{bucket.name}/fuse/x.txt"
        assert path.read_text() == "fuse"
    else:
        assert path is None
