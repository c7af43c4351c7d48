"""Cloud Storage needs the workspace secret, and every name stays inside its bucket.

Before: the storage routes accepted token-less requests, and names were joined onto
file paths unchecked, so `GET /storage/v1/b/B/o/..%2F..%2F..%2Ftoken?alt=media` returned
the workspace token and DELETE removed files anywhere the user could write.
"""

from __future__ import annotations

import os
from urllib.parse import unquote

import pytest
from google.cloud import storage

TRAVERSALS = ["..%2F..%2F..%2Ftoken", "%2e%2e%2f%2e%2e%2f%2e%2e%2ftoken",
              "..%2F..%2F..%2F..%2Fsecret.txt", "%2Ftmp%2Flabkit-outside.txt",
              "a%2F..%2F..%2F..%2F..%2Ftoken", "..", ".", "x%00y", "%0d%0a"]


@pytest.fixture()
def outside(local_env, tmp_path_factory):
    """A file beside the workspace that no request may read, list or delete."""
    path = local_env.workspace.parent / "secret.txt"
    path.write_text("not yours")
    yield path
    path.unlink(missing_ok=True)


def test_the_real_client_carries_the_secret_in_every_url(local_env):
    client = storage.Client()
    bucket = client.bucket(local_env.bucket)
    blob = bucket.blob("secret/small.txt")
    blob.upload_from_string("multipart upload")
    assert "/labkit-key/" in client.get_bucket(local_env.bucket).blob("x")._get_download_url(
        client)
    assert bucket.get_blob("secret/small.txt").download_as_text() == "multipart upload"
    big = bucket.blob("secret/big.bin", chunk_size=256 * 1024)  # resumable, in chunks
    payload = os.urandom(600 * 1024)
    big.upload_from_string(payload)
    reloaded = bucket.get_blob("secret/big.bin")
    assert "/labkit-key/" in reloaded.media_link
    assert reloaded.download_as_bytes() == payload
    assert [b.name for b in client.list_blobs(local_env.bucket, prefix="secret/")] == [
        "secret/big.bin", "secret/small.txt"]


@pytest.mark.parametrize("method,path", [
    ("GET", "/storage/v1/b"),
    ("GET", "/storage/v1/b/{bucket}/o"),
    ("GET", "/storage/v1/b/{bucket}/o/any?alt=media"),
    ("GET", "/download/storage/v1/b/{bucket}/o/any?alt=media"),
    ("POST", "/upload/storage/v1/b/{bucket}/o?uploadType=media&name=model.pkl"),
    ("DELETE", "/storage/v1/b/{bucket}/o/any"),
    ("POST", "/storage/v1/b"),
])
def test_no_secret_no_access(local_env, anonymous, method, path):
    """A process without the workspace secret can neither read nor write objects (a
    model.pkl that the services later load, a training package)."""
    url = local_env.endpoint + path.format(bucket=local_env.bucket)
    answer = anonymous.request(method, url, data=b"pickle bytes")
    assert answer.status_code == 401, answer.text
    wrong_key = local_env.endpoint + "/labkit-key/0123456789abcdef0123456789abcdef" + \
        path.format(bucket=local_env.bucket)
    assert anonymous.request(method, wrong_key, data=b"x").status_code == 401


@pytest.mark.parametrize("name", TRAVERSALS)
def test_object_names_never_leave_their_bucket(local_env, authed, outside, name):
    base = f"{local_env.endpoint}/storage/v1/b/{local_env.bucket}/o/{name}"
    for method, url in [("GET", base + "?alt=media"), ("GET", base),
                        ("GET", f"{local_env.endpoint}/download/storage/v1/b/"
                                f"{local_env.bucket}/o/{name}?alt=media"),
                        ("PATCH", base), ("DELETE", base)]:
        answer = authed.request(method, url, json={"metadata": {"k": "v"}})
        assert answer.status_code in (400, 404), (method, url, answer.status_code)
        assert "error" in answer.json()
        assert "not yours" not in answer.text
        token = (local_env.workspace / "token").read_text().strip()
        assert token not in answer.text
    upload = authed.post(f"{local_env.endpoint}/upload/storage/v1/b/{local_env.bucket}/o",
                         params={"uploadType": "media", "name": unquote(name)},
                         data=b"overwrite")
    assert upload.status_code == 400
    assert outside.read_text() == "not yours"
    assert not list(outside.parent.glob("secret.txt*.json"))  # no metadata beside it


@pytest.mark.parametrize("bucket", ["..%2F..%2Fauth%2Fcredentials", "..", "%2Ftmp", "a%2F..",
                                    "UPPER", "ab", "goog-bucket"])
def test_bucket_names_follow_cloud_storage_rules(local_env, authed, bucket):
    for method, path in [("GET", ""), ("GET", "/o"), ("DELETE", ""), ("PATCH", ""),
                         ("GET", "/o/x?alt=media")]:
        answer = authed.request(method, f"{local_env.endpoint}/storage/v1/b/{bucket}{path}",
                                json={})
        assert answer.status_code in (400, 404), (method, path, answer.text)
    created = authed.post(f"{local_env.endpoint}/storage/v1/b",
                          json={"name": bucket.replace("%2F", "/")})
    assert created.status_code == 400
    assert "Invalid bucket name" in created.json()["error"]["message"]
    assert (local_env.workspace / "auth" / "credentials.json").exists()


def test_object_name_limits_are_googles(local_env):
    bucket = storage.Client().bucket(local_env.bucket)
    from google.api_core import exceptions

    for name in ["x" * 1025, "bad\nname", ".", "..", ".well-known/acme-challenge/x"]:
        with pytest.raises(exceptions.BadRequest):
            bucket.blob(name).upload_from_string("x")
    name = "/".join(["é" * 100] * 5) + "/" + "x" * 19  # 1024 bytes of UTF-8: the limit
    bucket.blob(name).upload_from_string("fits")
    assert bucket.blob(name).download_as_text() == "fits"


def test_listing_prefixes_cannot_climb_out(local_env, authed, outside):
    url = f"{local_env.endpoint}/storage/v1/b/{local_env.bucket}/o"
    for prefix in ["../", "../../", "../../../", "/", "/tmp/"]:
        answer = authed.get(url, params={"prefix": prefix})
        assert answer.status_code == 200
        assert answer.json().get("items", []) == []
