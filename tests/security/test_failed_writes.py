"""A failed write leaves the previous generation readable, with its metadata.

Before: a multipart upload with a wrong md5Hash over an existing object answered 400
and the old object was gone (404), and an upload cut off mid-body stored the fragment.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from urllib.parse import urlsplit

import pytest
from google.api_core import exceptions
from google.cloud import storage


@pytest.fixture()
def existing(local_env):
    blob = storage.Client().bucket(local_env.bucket).blob("keep/model.pkl")
    blob.metadata = {"owner": "learner"}
    blob.upload_from_string(b"generation one", content_type="application/x-pickle")
    return blob


def _multipart(local_env, name: str, data: bytes, **metadata) -> tuple[str, bytes, dict]:
    boundary = "labkitboundary"
    meta = json.dumps({"name": name, **metadata})
    body = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{meta}\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + \
        data + f"\r\n--{boundary}--\r\n".encode()
    key = storage.Client()._connection.API_BASE_URL
    url = f"{key}/upload/storage/v1/b/{local_env.bucket}/o?uploadType=multipart"
    return url, body, {"Content-Type": f"multipart/related; boundary={boundary}"}


def _still_there(existing):
    again = storage.Client().bucket(existing.bucket.name).get_blob(existing.name)
    assert again.download_as_bytes() == b"generation one"
    assert again.metadata == {"owner": "learner"}
    assert again.generation == existing.generation


@pytest.mark.parametrize("field", ["md5Hash", "crc32c"])
def test_wrong_checksum_keeps_the_previous_object(local_env, existing, field):
    import requests

    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    url, body, headers = _multipart(local_env, existing.name, b"generation two", **{field: wrong})
    answer = requests.post(url, data=body, headers=headers)
    assert answer.status_code == 400
    assert "doesn't match" in answer.json()["error"]["message"]
    _still_there(existing)


def test_failed_precondition_keeps_the_previous_object(local_env, existing):
    blob = storage.Client().bucket(local_env.bucket).blob(existing.name)
    with pytest.raises(exceptions.PreconditionFailed):
        blob.upload_from_string(b"generation two", if_generation_match=1)
    _still_there(existing)


def test_an_upload_cut_off_mid_body_stores_nothing(local_env, existing):
    url, body, headers = _multipart(local_env, existing.name, b"generation two" * 1000)
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        head = (f"POST {parts.path}?{parts.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: {headers['Content-Type']}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        sock.sendall(head + body[: len(body) // 2])  # then hang up
    media = f"{storage.Client()._connection.API_BASE_URL}/upload/storage/v1/b/" \
            f"{local_env.bucket}/o?uploadType=media&name={existing.name}"
    parts = urlsplit(media)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall((f"POST {parts.path}?{parts.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Content-Length: 100000\r\n\r\n").encode() + b"partial")
    _still_there(existing)


def test_a_failed_resumable_upload_keeps_the_previous_object(local_env, existing):
    import requests

    base = storage.Client()._connection.API_BASE_URL
    start = requests.post(f"{base}/upload/storage/v1/b/{local_env.bucket}/o",
                          params={"uploadType": "resumable"},
                          json={"name": existing.name, "md5Hash": "AAAAAAAAAAAAAAAAAAAAAA=="})
    assert start.status_code == 200
    session = start.headers["Location"]
    assert "/labkit-key/" in session
    done = requests.put(session, data=b"generation two",
                        headers={"Content-Range": "bytes 0-13/14"})
    assert done.status_code == 400
    _still_there(existing)
