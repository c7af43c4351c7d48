"""DlpServiceClient(transport="rest") with no other arguments: https://dlp.googleapis.com
through the proxy, served by the same methods as gRPC, with Google's JSON errors."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import dlp_v2


@pytest.fixture(autouse=True)
def _workspace_ca(monkeypatch):
    # requests trusts REQUESTS_CA_BUNDLE before CURL_CA_BUNDLE (the workspace CA that
    # labkit.start() sets); a machine that sets the former (this CI image does) hides the CA.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)


@pytest.fixture(scope="module")
def rest(local_env):
    return dlp_v2.DlpServiceClient(transport="rest")


def test_inspect_and_deidentify_over_rest(rest, parent):
    result = rest.inspect_content(request={
        "parent": parent, "item": {"value": "card 4111 1111 1111 1111"},
        "inspect_config": {"info_types": [{"name": "CREDIT_CARD_NUMBER"}],
                           "include_quote": True}}).result
    assert [(f.info_type.name, f.quote, f.likelihood) for f in result.findings] == \
        [("CREDIT_CARD_NUMBER", "4111 1111 1111 1111", dlp_v2.Likelihood.VERY_LIKELY)]
    response = rest.deidentify_content(request={
        "parent": parent, "item": {"value": "mail jen@example.com"},
        "deidentify_config": {"info_type_transformations": {"transformations": [
            {"primitive_transformation": {"crypto_hash_config": {
                "crypto_key": {"unwrapped": {"key": bytes(32)}}}}}]}},
        "inspect_config": {"info_types": [{"name": "EMAIL_ADDRESS"}]}})
    assert response.item.value.startswith("mail ") and "@" not in response.item.value
    assert response.overview.transformation_summaries[0].results[0].count == 1


def test_info_types_and_jobs_over_rest(rest, parent):
    assert "IBAN_CODE" in {i.name for i in rest.list_info_types(request={}).info_types}
    with pytest.raises(exceptions.NotFound):
        rest.get_dlp_job(name=f"{parent}/dlpJobs/i-missing")
    assert list(rest.list_dlp_jobs(request={"parent": parent, "page_size": 5})) is not None


def test_rest_refusals(rest, parent):
    with pytest.raises(exceptions.BadRequest, match='Invalid built-in info type name "NOPE"'):
        rest.inspect_content(request={"parent": parent, "item": {"value": "x"},
                                      "inspect_config": {"info_types": [{"name": "NOPE"}]}})
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        rest.list_inspect_templates(request={"parent": parent})
    import requests

    # (the client would refresh its credentials on a 401: a raw call shows the answer)
    answer = requests.post(f"https://dlp.googleapis.com/v2/{parent}/content:inspect",
                           json={"item": {"value": "x"}},
                           headers={"Authorization": "Bearer not-the-workspace-token"})
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"
    unknown = rest._transport._session.post(
        f"https://dlp.googleapis.com/v2/{parent}/content:inspect",
        json={"item": {"value": "x"}, "notAField": 1})
    assert unknown.status_code == 400
    assert "Invalid JSON payload received" in unknown.json()["error"]["message"]
    assert "notAField" in unknown.json()["error"]["message"]
