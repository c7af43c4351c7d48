"""What the workspace holds stays its user's and inside it.

Before: the workspace folder was 0755 and server.key and data files 0644; Vertex ids with
'..%2F' read and deleted JSON files outside the workspace; every workspace's default bucket
had the same name, so two workspaces re-pointed each other's /gcs/BUCKET link; an object
whose contentType was not Latin-1 dropped every download's connection.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from google.cloud import storage

VERTEX = "/v1/projects/{project}/locations/us-central1"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_workspace_is_private(local_env):
    root = local_env.workspace
    assert _mode(root) == 0o700
    assert _mode(root / "token") == 0o600
    assert _mode(root / "auth" / "credentials.json") == 0o600
    for key in root.rglob("server.key"):
        assert _mode(key) == 0o600
    blob = storage.Client().bucket(local_env.bucket).blob("modes/data.csv")
    blob.upload_from_string("a,b\n")
    data = next(root.glob(f"storage/data/{local_env.bucket}/modes/data.csv"))
    assert _mode(data) & 0o077 == 0
    assert _mode(data.parent) & 0o077 == 0


def test_vertex_ids_never_name_files_outside_the_store(local_env, authed):
    outside = local_env.workspace.parent / "victim.json"
    outside.write_text(json.dumps({"name": "not yours"}))
    try:
        base = local_env.endpoint + VERTEX.format(project=local_env.project)
        for rid in ["..%2F..%2F..%2Fvictim", "%2E%2E%2F%2E%2E%2F%2E%2E%2Fvictim", "..", "."]:
            for method in ("GET", "DELETE"):
                answer = authed.request(method, f"{base}/tensorboards/{rid}")
                assert answer.status_code in (400, 404), answer.text
                assert "not yours" not in answer.text
            answer = authed.post(f"{base}/tensorboards/{rid}/experiments",
                                 params={"tensorboardExperimentId": "x"}, json={})
            assert 400 <= answer.status_code < 500
        assert json.loads(outside.read_text()) == {"name": "not yours"}
    finally:
        outside.unlink(missing_ok=True)


def test_default_buckets_are_unique_per_workspace(local_env, tmp_path):
    code = "import labkit; print(labkit.start().bucket)"
    env = {**os.environ, "LAB_WORKSPACE": str(tmp_path / "other")}
    try:
        other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                               text=True, check=True, timeout=120).stdout.strip()
    finally:
        subprocess.run([sys.executable, "-m", "labkit.services", "stop"], env=env,
                       capture_output=True, timeout=60)
    assert other != local_env.bucket
    assert other.startswith(f"{local_env.project}-labs-")


def test_content_types_outside_latin1_download(local_env):
    blob = storage.Client().bucket(local_env.bucket).blob("types/plant.txt")
    blob.upload_from_string("leaf")
    blob.content_type = "text/植物"
    blob.patch()
    assert blob.download_as_text() == "leaf"
    assert storage.Client().bucket(local_env.bucket).get_blob("types/plant.txt") \
        .content_type == "text/植物"
