"""labkit.start()'s gcp preflight: which settings a lab needs for the APIs it declares, the
Service Usage answer read through google-api-python-client (its HTTP transport faked: no
local service stands in for Service Usage), and the bucket's region read through the real
Cloud Storage client from the local Cloud Storage."""

from __future__ import annotations

import json
import warnings

import pytest
from google.cloud import storage
from googleapiclient.http import HttpMockSequence

import labkit
from labkit import preflight

from .test_start import bare_gcp_env  # noqa: F401 - the fixture

BQ, GCS, VERTEX = preflight.DEFAULT_APIS


def test_a_lab_that_calls_no_service_needs_no_project_bucket_or_credentials(
        bare_gcp_env, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    env = labkit.start("gcp", apis=[])
    assert (env.backend, env.project, env.bucket) == ("gcp", "", "")


def test_a_bigquery_only_lab_needs_no_bucket(bare_gcp_env, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(labkit.ConfigError) as info:
        labkit.start("gcp", apis=[BQ])
    assert "GOOGLE_CLOUD_PROJECT" in str(info.value) and "LAB_BUCKET" not in str(info.value)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv("LAB_REGION", "us-central1")
    with pytest.raises(labkit.ConfigError, match="application-default login"):
        labkit.start("gcp", apis=[BQ])


def test_unknown_api_names_fail_on_either_backend():
    with pytest.raises(labkit.ConfigError, match="known APIs"):
        labkit.start("local", apis=["bigqeury.googleapis.com"])


class RecordingHttp(HttpMockSequence):
    def __init__(self, responses):
        super().__init__(responses)
        self.uris = []

    def request(self, uri, *args, **kwargs):
        self.uris.append(uri)
        return super().request(uri, *args, **kwargs)


def _batch_get(states: dict[str, str]) -> RecordingHttp:
    services = [{"name": f"projects/123/services/{api}", "config": {"name": api},
                 "state": state} for api, state in states.items()]
    return RecordingHttp([({"status": "200"}, json.dumps({"services": services}))])


def test_disabled_apis_are_named_with_the_command_that_enables_them():
    http = _batch_get({BQ: "ENABLED", VERTEX: "DISABLED"})
    with pytest.raises(preflight.PreflightError) as info:
        preflight.check_apis("my-project", [BQ, VERTEX], None, http=http)
    message = str(info.value)
    assert f"gcloud services enable {VERTEX} --project=my-project" in message
    assert BQ not in message.split("enable")[-1]
    uri = http.uris[0]
    assert uri.startswith("https://serviceusage.googleapis.com/v1/projects/my-project/"
                          "services:batchGet")
    assert "names=projects%2Fmy-project%2Fservices%2Faiplatform.googleapis.com" in uri


def test_enabled_apis_pass():
    preflight.check_apis("p", [BQ, GCS], None, http=_batch_get({BQ: "ENABLED",
                                                                GCS: "ENABLED"}))


def test_a_refused_service_usage_call_warns_and_says_what_to_run():
    http = RecordingHttp([({"status": "403"}, json.dumps(
        {"error": {"code": 403, "message": "Service Usage API has not been used",
                   "status": "PERMISSION_DENIED"}}))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        preflight.check_apis("p", [VERTEX], None, http=http)
    assert [w.category for w in caught] == [preflight.PreflightSkipped]
    assert f"gcloud services enable {VERTEX} --project=p" in str(caught[0].message)


def test_the_bucket_must_exist_in_the_region(local_env):
    client = storage.Client()
    regional = client.create_bucket("preflight-regional", location="us-central1")
    multi = client.create_bucket("preflight-multi", location="US")
    elsewhere = client.create_bucket("preflight-elsewhere", location="europe-west4")
    try:
        preflight.check_bucket(client, regional.name, "us-central1")
        with pytest.raises(preflight.PreflightError) as info:
            preflight.check_bucket(client, multi.name, "us-central1")
        assert "multi-region" in str(info.value)
        assert ("gcloud storage buckets create gs://preflight-multi-us-central1 "
                "--location=us-central1") in str(info.value)
        assert "LAB_REGION" not in str(info.value)
        with pytest.raises(preflight.PreflightError, match="export LAB_REGION=europe-west4"):
            preflight.check_bucket(client, elsewhere.name, "us-central1")
        with pytest.raises(preflight.PreflightError, match="does not exist"):
            preflight.check_bucket(client, "preflight-missing", "us-central1")
    finally:
        for bucket in (regional, multi, elsewhere):
            bucket.delete()
