"""Request bodies are checked against Google's discovery documents, as Google's front end
does: an unknown field or enum value is Google's 400 before the service sees the request
(labkit.services.discovery). The real SDKs send valid bodies; raw HTTP and the SDKs'
escape hatches (google-genai's extra_body) send the bad ones."""

from __future__ import annotations

import pytest

BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


def vertex(local_env, version: str = "v1") -> str:
    return f"{local_env.endpoint}/{version}/projects/{local_env.project}/locations/us-central1"


def test_unknown_field_in_a_resource_body(http, local_env):
    r = http.post(f"{vertex(local_env)}/endpoints", json={"displayName": "e", "foo": 1})
    assert r.status_code == 400
    error = r.json()["error"]
    message = ("Invalid JSON payload received. Unknown name \"foo\" at 'endpoint': "
               "Cannot find field.")
    assert error["message"] == message
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"] == [{"@type": BAD_REQUEST, "fieldViolations": [
        {"field": "endpoint", "description": message}]}]
    listed = http.get(f"{vertex(local_env)}/endpoints").json().get("endpoints", [])
    assert not [e for e in listed if e["displayName"] == "e"]  # nothing was created


def test_nested_unknown_fields_are_all_named_with_proto_paths(http, local_env):
    body = {"model": {"displayName": "m", "containerSpec": {"imageUri": "x", "portz": 1},
                      "labelz": {}}, "extra": True}
    r = http.post(f"{vertex(local_env)}/models:upload", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["message"].split("\n") == [
        "Invalid JSON payload received. Unknown name \"portz\" at 'model.container_spec': "
        "Cannot find field.",
        "Invalid JSON payload received. Unknown name \"labelz\" at 'model': Cannot find field.",
        "Invalid JSON payload received. Unknown name \"extra\": Cannot find field."]
    fields = [v.get("field") for v in r.json()["error"]["details"][0]["fieldViolations"]]
    assert fields == ["model.container_spec", "model", None]


def test_proto_field_names_are_accepted_too(http, local_env):
    r = http.post(f"{vertex(local_env)}/endpoints",
                  json={"display_name": "snake", "labels": {"any-key": "v"}})
    assert r.status_code == 200, r.text


def test_bad_enum_value(http, local_env):
    body = {"deployedModel": {"model": "projects/p/locations/us-central1/models/1",
                              "dedicatedResources": {"machineSpec": {
                                  "machineType": "n1-standard-2",
                                  "acceleratorType": "NVIDIA_TESLA_FOO"}}}}
    r = http.post(f"{vertex(local_env)}/endpoints/123:deployModel", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "Invalid value at 'deployed_model.dedicated_resources.machine_spec.accelerator_type' "
        "(type.googleapis.com/google.cloud.aiplatform.v1.AcceleratorType), \"NVIDIA_TESLA_FOO\"")


def test_v1beta1_is_checked_against_its_own_document(http, local_env):
    r = http.post(f"{vertex(local_env, 'v1beta1')}/endpoints", json={"displayName": "b", "x": 1})
    assert r.status_code == 400
    assert "Unknown name \"x\" at 'endpoint'" in r.json()["error"]["message"]
    ok = http.post(f"{vertex(local_env, 'v1beta1')}/endpoints", json={"displayName": "beta"})
    assert ok.status_code == 200, ok.text


def test_free_form_fields_are_not_looked_into(http, local_env):
    # instances and parameters are google.protobuf.Value: anything goes (the endpoint is
    # then not found, which shows the body passed the check)
    r = http.post(f"{vertex(local_env)}/endpoints/404404:predict",
                  json={"instances": [{"anything": [1, {"deep": True}]}], "parameters": {"k": 1}})
    assert r.status_code == 404


def test_gen_ai_sdk_extra_body_with_an_unknown_field(local_env):
    from google import genai
    from google.genai import errors, types

    client = genai.Client(vertexai=True, project=local_env.project, location="us-central1")
    config = types.GenerateContentConfig(
        http_options=types.HttpOptions(extra_body={"generationConfig": {"temprature": 0.1}}))
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemma-3-270m", contents="hi", config=config)
    assert caught.value.code == 400
    assert ("Unknown name \"temprature\" at 'generation_config': Cannot find field."
            in caught.value.message)


def test_bigquery_unknown_field_and_enum(http, local_env):
    base = f"{local_env.endpoint}/bigquery/v2/projects/{local_env.project}"
    r = http.post(f"{base}/jobs", json={"configuration": {"query": {"query": "SELECT 1",
                                                                     "useLegacySql": False,
                                                                     "qurey": "x"}}})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["message"] == ("Invalid JSON payload received. Unknown name \"qurey\" at "
                                "'job.configuration.query': Cannot find field.")
    assert error["errors"][0]["reason"] == "invalid"
    r = http.post(f"{base}/datasets", json={"datasetReference": {"datasetId": "enum_ds"},
                                            "storageBillingModel": "CHEAP"})
    assert r.status_code == 400
    assert "'dataset.storage_billing_model'" in r.json()["error"]["message"]
    assert http.get(f"{base}/datasets/enum_ds").status_code == 404


def test_bigquery_rows_are_free_form(local_env):
    from google.cloud import bigquery

    client = bigquery.Client()
    client.create_dataset("rows_ds", exists_ok=True)
    table = client.create_table(bigquery.Table(
        f"{local_env.project}.rows_ds.t", schema=[bigquery.SchemaField("any_name", "STRING")]),
        exists_ok=True)
    assert client.insert_rows_json(table, [{"any_name": "x"}]) == []
