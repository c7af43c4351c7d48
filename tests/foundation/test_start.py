"""labkit.start(): backends, idempotence, the wiring of the real clients, and the guard
in front of the local services."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

import labkit
from labkit import env as env_module


def test_local_start_points_the_real_clients_at_the_local_services(local_env):
    assert local_env.backend == "local"
    assert local_env.endpoint.startswith("http://127.0.0.1:")
    assert os.environ["BIGQUERY_EMULATOR_HOST"] == local_env.endpoint
    key = labkit.workspace.Workspace(local_env.workspace).path_key
    assert os.environ["STORAGE_EMULATOR_HOST"] == f"{local_env.endpoint}/labkit-key/{key}"
    assert os.environ["GOOGLE_CLOUD_PROJECT"] == local_env.project
    creds = json.loads(open(os.environ["GOOGLE_APPLICATION_CREDENTIALS"]).read())
    assert creds["type"] == "external_account"
    assert creds["token_url"].startswith(local_env.endpoint)

    from google.cloud import aiplatform
    from google.cloud.aiplatform import initializer

    assert aiplatform.initializer.global_config.project == local_env.project
    assert initializer.global_config.api_endpoint == local_env.endpoint
    assert local_env.bucket_uri == f"gs://{local_env.bucket}"


def test_start_is_idempotent(local_env):
    assert labkit.start() is local_env
    assert labkit.start("local") is local_env


def test_google_auth_gets_the_workspace_token_from_the_local_token_endpoint(local_env):
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(google.auth.transport.requests.Request())
    token = (local_env.workspace / "token").read_text().strip()
    assert credentials.token == token


def test_a_second_process_joins_the_same_services(local_env):
    code = "import labkit; print(labkit.start().endpoint)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, check=True, timeout=120).stdout.strip()
    assert out == local_env.endpoint


def test_httplib2_imported_before_start_trusts_the_proxy(local_env):
    """Beam's BigQuery I/O calls bigquery.googleapis.com with httplib2 through the proxy;
    httplib2 reads its CA variable on import, and an earlier import must not keep the old one."""
    code = ("import httplib2, labkit; labkit.start(); "
            "h = httplib2.Http(proxy_info=httplib2.proxy_info_from_environment('https')); "
            "r, _ = h.request('https://bigquery.googleapis.com/bigquery/v2/projects/p/datasets'); "
            "print(r.status)")
    env = {k: v for k, v in os.environ.items() if k != "HTTPLIB2_CA_CERTS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "401"  # reached the local BigQuery, which wants a token


def _health(local_env, **headers):
    return requests.get(f"{local_env.endpoint}/labkit/health", headers=headers, timeout=5)


def test_services_require_the_workspace_token(local_env):
    token = (local_env.workspace / "token").read_text().strip()
    assert _health(local_env, Authorization=f"Bearer {token}").status_code == 200
    assert _health(local_env).status_code == 401
    assert _health(local_env, Authorization="Bearer wrong").status_code == 401


@pytest.mark.parametrize("headers", [
    {"Host": "evil.example.com"},
    {"Origin": "https://evil.example.com"},
    {"Sec-Fetch-Site": "cross-site"},
])
def test_services_refuse_non_local_hosts_and_origins(local_env, headers):
    token = (local_env.workspace / "token").read_text().strip()
    response = _health(local_env, Authorization=f"Bearer {token}", **headers)
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"
    assert _health(local_env, Authorization=f"Bearer {token}").status_code == 200  # still serving


def test_unknown_paths_get_a_shaped_error_that_names_the_gcp_backend(local_env):
    token = (local_env.workspace / "token").read_text().strip()
    response = requests.get(f"{local_env.endpoint}/no/such/api",
                            headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 404
    assert "LAB_BACKEND=gcp" in response.json()["error"]["message"]


def test_unknown_backend_is_refused():
    with pytest.raises(labkit.ConfigError, match="not a backend"):
        labkit.start("azure")


@pytest.fixture
def bare_gcp_env(monkeypatch, tmp_path):
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "LAB_REGION",
                 "GOOGLE_CLOUD_REGION", "CLOUDSDK_COMPUTE_REGION", "LAB_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcloud
    monkeypatch.setattr(env_module, "_started", {})
    monkeypatch.setattr(env_module, "_checked_apis", set())


def test_gcp_backend_says_exactly_what_to_set(bare_gcp_env):
    with pytest.raises(labkit.ConfigError) as info:
        labkit.start("gcp")
    message = str(info.value)
    for words in ("GOOGLE_CLOUD_PROJECT", "LAB_REGION", "LAB_BUCKET",
                  "gcloud storage buckets create"):
        assert words in message


def test_gcp_backend_needs_credentials(bare_gcp_env, monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    monkeypatch.setenv("LAB_REGION", "europe-west4")
    monkeypatch.setenv("LAB_BUCKET", "gs://my-bucket/")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(labkit.ConfigError, match="application-default login"):
        labkit.start("gcp")


def test_services_restart_on_the_same_port_with_their_state(tmp_path):
    """In a workspace of its own: the shared test services stay up for the other tests."""
    from labkit.services import daemon
    from labkit.workspace import Workspace

    workspace = Workspace(tmp_path / "workspace")
    try:
        port = daemon.ensure_running(workspace)
        token = workspace.token
        marker = workspace.path("state-probe.txt")
        marker.write_text("kept")
        assert daemon.stop(workspace)
        assert daemon.running_port(workspace) is None
        assert daemon.ensure_running(workspace) == port  # kernels' endpoints stay valid
        assert workspace.token == token and marker.read_text() == "kept"
    finally:
        daemon.stop(workspace)


def test_start_again_after_the_services_stopped_restarts_them(tmp_path):
    # In a process of its own: start() rewires this process's clients.
    code = """
import labkit
from labkit.services import daemon
from labkit.workspace import Workspace
first = labkit.start()
daemon.stop(Workspace(first.workspace))
again = labkit.start()
assert daemon.running_port(Workspace(again.workspace)), "not restarted"
assert again.endpoint == first.endpoint, (first, again)
daemon.stop(Workspace(again.workspace))
print("ok")
"""
    env = {**os.environ, "LAB_WORKSPACE": str(tmp_path / "workspace")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=180)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_services_running_older_code_are_replaced(tmp_path, monkeypatch):
    """The health answer carries a hash of the code the services loaded; a process that
    runs other code than is installed here (an edited module, a `git pull`) is replaced."""
    from labkit.services import daemon, wiring
    from labkit.workspace import Workspace

    workspace = Workspace(tmp_path / "workspace")
    try:
        port = daemon.ensure_running(workspace)
        first = daemon._health(workspace, port)
        assert first["version"] == wiring.code_version()
        assert daemon.ensure_running(workspace) == port  # current: joined, not restarted
        assert daemon._health(workspace, port)["pid"] == first["pid"]
        monkeypatch.setattr(wiring, "code_version", lambda: "edited-since")
        port = daemon.ensure_running(workspace)
        assert daemon._health(workspace, port)["pid"] != first["pid"]
    finally:
        daemon.stop(workspace)
