"""BigQuery ML models leaving BigQuery: EXPORT MODEL and model extract jobs write the
documented formats to Cloud Storage (TensorFlow SavedModel, XGBoost Booster), which upload
and deploy on the local Vertex AI and predict what ML.PREDICT predicts; model_registry =
'vertex_ai' registers each training as a Model Registry version, deployable as is."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform, bigquery, storage

TF_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
XGB_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.2-1:latest"


@pytest.fixture(scope="module")
def training(client, dataset):
    """A small table: two numeric features, one STRING feature, a STRING label."""
    table = f"{dataset}.fish"
    client.query(f"""
        CREATE TABLE {table} AS
        SELECT x, y, IF(MOD(i, 3) = 0, 'pond', IF(MOD(i, 3) = 1, 'river', 'sea')) AS water,
               IF(x + 0.5 * y + IF(MOD(i, 3) = 0, 0.7, 0) > 0.8, 'big', 'small') AS size,
               2.0 * x - y + IF(MOD(i, 3) = 2, 1.5, 0) AS weight
        FROM (SELECT i, MOD(i * 37, 101) / 101 AS x, MOD(i * 53, 97) / 97 AS y
              FROM UNNEST(GENERATE_ARRAY(1, 240)) AS i)""").result()
    return table


def _predict_sql(client, model: str, table: str) -> list:
    return list(client.query(f"SELECT * FROM ML.PREDICT(MODEL {model}, (SELECT * FROM {table} "
                             "ORDER BY x, y LIMIT 6))").result())


def _instances(rows) -> list[dict]:
    return [{"x": r["x"], "y": r["y"], "water": r["water"]} for r in rows]


def _deploy(uri: str, image: str):
    model = aiplatform.Model.upload(display_name=f"t-{uuid.uuid4().hex[:6]}", artifact_uri=uri,
                                    serving_container_image_uri=image)
    endpoint = model.deploy(machine_type="n1-standard-2")
    return model, endpoint


def _cleanup(model, endpoint):
    endpoint.undeploy_all()
    endpoint.delete()
    model.delete()


def test_logistic_regression_exports_a_saved_model_vertex_serves(client, dataset, training,
                                                                local_env):
    client.query(f"CREATE MODEL {dataset}.size_lr OPTIONS(model_type='logistic_reg', "
                 f"input_label_cols=['size']) AS SELECT x, y, water, size FROM {training}"
                 ).result()
    uri = f"gs://{local_env.bucket}/bqml-export/{uuid.uuid4().hex[:6]}/size_lr"
    job = client.query(f"EXPORT MODEL {dataset}.size_lr OPTIONS(URI = '{uri}')")
    job.result()
    assert job.statement_type == "EXPORT_MODEL"
    names = {b.name.split("/size_lr/", 1)[1] for b in storage.Client().list_blobs(
        local_env.bucket, prefix=uri.split("/", 3)[3] + "/")}
    assert {"saved_model.pb", "variables/variables.index"} <= names
    rows = _predict_sql(client, f"{dataset}.size_lr", training)
    model, endpoint = _deploy(uri, TF_IMAGE)
    try:
        got = endpoint.predict(instances=_instances(rows)).predictions
    finally:
        _cleanup(model, endpoint)
    for row, pred in zip(rows, got, strict=True):
        probs = {p["label"]: p["prob"] for p in row["predicted_size_probs"]}
        assert pred["predicted_size"] == [row["predicted_size"]]
        assert pred["size_values"] == ["big", "small"]
        np.testing.assert_allclose(pred["size_probs"], [probs["big"], probs["small"]],
                                   rtol=1e-6, atol=1e-9)


def test_dnn_regressor_and_kmeans_export(client, dataset, training, local_env):
    client.query(f"CREATE MODEL {dataset}.weight_dnn OPTIONS(model_type='dnn_regressor', "
                 f"hidden_units=[8], max_iterations=5, input_label_cols=['weight']) AS "
                 f"SELECT x, y, water, weight FROM {training}").result()
    uri = f"gs://{local_env.bucket}/bqml-export/{uuid.uuid4().hex[:6]}/weight_dnn"
    client.query(f"EXPORT MODEL {dataset}.weight_dnn OPTIONS(URI = '{uri}')").result()
    rows = _predict_sql(client, f"{dataset}.weight_dnn", training)
    model, endpoint = _deploy(uri, TF_IMAGE)
    try:
        got = endpoint.predict(instances=_instances(rows)).predictions
    finally:
        _cleanup(model, endpoint)
    # one output: Vertex's TensorFlow container answers its value per instance
    np.testing.assert_allclose([p[0] for p in got],
                               [r["predicted_weight"] for r in rows], rtol=1e-4)

    client.query(f"CREATE MODEL {dataset}.groups OPTIONS(model_type='kmeans', num_clusters=3) "
                 f"AS SELECT x, y, water FROM {training}").result()
    # an extract job on the model reference (bq extract -m), as the official samples do
    uri = f"gs://{local_env.bucket}/bqml-export/{uuid.uuid4().hex[:6]}/groups"
    config = bigquery.ExtractJobConfig(destination_format="ML_TF_SAVED_MODEL")
    client.extract_table(f"{client.project}.{dataset}.groups", uri, source_type="Model",
                         job_config=config).result()
    rows = _predict_sql(client, f"{dataset}.groups", training)
    model, endpoint = _deploy(uri, TF_IMAGE)
    try:
        got = endpoint.predict(instances=_instances(rows)).predictions
    finally:
        _cleanup(model, endpoint)
    assert [p["nearest_centroid_ids"] for p in got] == [[r["centroid_id"]] for r in rows]


def test_boosted_tree_exports_a_booster(client, dataset, training, local_env):
    client.query(f"CREATE MODEL {dataset}.size_bt OPTIONS(model_type='boosted_tree_classifier',"
                 f" input_label_cols=['size'], max_iterations=5) AS "
                 f"SELECT x, y, size FROM {training}").result()
    uri = f"gs://{local_env.bucket}/bqml-export/{uuid.uuid4().hex[:6]}/size_bt"
    client.extract_table(f"{client.project}.{dataset}.size_bt", uri, source_type="Model").result()
    bucket = storage.Client().bucket(local_env.bucket)
    prefix = uri.split("/", 3)[3]
    assert bucket.blob(f"{prefix}/model.bst").exists()
    metadata = bucket.blob(f"{prefix}/assets/model_metadata.json").download_as_text()
    assert '"feature_names": [\n  "x",\n  "y"\n ]' in metadata
    rows = _predict_sql(client, f"{dataset}.size_bt", training)
    model, endpoint = _deploy(uri, XGB_IMAGE)
    try:
        # the booster reads the features in model_metadata.json's order
        got = endpoint.predict(instances=[[r["x"], r["y"]] for r in rows]).predictions
    finally:
        _cleanup(model, endpoint)
    small = [next(p["prob"] for p in r["predicted_size_probs"] if p["label"] == "small")
             for r in rows]
    np.testing.assert_allclose(got, small, rtol=1e-5)  # P(label 1), labels sorted


def test_export_refusals(client, dataset, training, local_env):
    client.query(f"CREATE MODEL {dataset}.bt_for_tf OPTIONS(model_type='boosted_tree_regressor',"
                 f" input_label_cols=['weight'], max_iterations=2) AS "
                 f"SELECT x, y, weight FROM {training}").result()
    uri = f"gs://{local_env.bucket}/bqml-export/refused"
    config = bigquery.ExtractJobConfig(destination_format="ML_TF_SAVED_MODEL")
    with pytest.raises(exceptions.BadRequest, match="ML_XGBOOST_BOOSTER"):
        client.extract_table(f"{client.project}.{dataset}.bt_for_tf", uri, source_type="Model",
                             job_config=config).result()
    with pytest.raises(exceptions.BadRequest, match="URI"):
        client.query(f"EXPORT MODEL {dataset}.bt_for_tf").result()
    with pytest.raises(exceptions.NotFound):
        client.query(f"EXPORT MODEL {dataset}.no_such OPTIONS(URI = '{uri}')").result()


def test_model_registry_versions_aliases_and_deploy(client, dataset, training, local_env):
    vertex_id = f"fish_{uuid.uuid4().hex[:6]}"
    create = (f"CREATE OR REPLACE MODEL {dataset}.size_reg OPTIONS(model_type='logistic_reg', "
              f"input_label_cols=['size'], model_registry='vertex_ai', "
              f"vertex_ai_model_id='{vertex_id}', vertex_ai_model_version_aliases=[{{}}]) AS "
              f"SELECT x, y, water, size FROM {training}")
    client.query(create.format("'first'")).result()
    run = client.get_model(f"{dataset}.size_reg")._properties["trainingRuns"][0]
    assert (run["vertexAiModelId"], run["vertexAiModelVersion"]) == (vertex_id, "1")
    client.query(create.format("'second', 'champion'")).result()   # retraining: version 2
    model = aiplatform.Model(vertex_id)
    assert model.version_id == "2"
    assert set(model.version_aliases) == {"default", "second", "champion"}
    assert model.gca_resource.model_source_info.source_type.name == "BQML"
    versions = {v.version_id: set(v.version_aliases)
                for v in model.versioning_registry.list_versions()}
    assert versions == {"1": {"first"}, "2": {"default", "second", "champion"}}
    assert [m.name for m in aiplatform.Model.list(filter=f"display_name={vertex_id}")] == \
        [vertex_id]
    rows = _predict_sql(client, f"{dataset}.size_reg", training)
    endpoint = model.deploy(machine_type="n1-standard-2")
    try:
        got = endpoint.predict(instances=_instances(rows)).predictions
        explained = endpoint.explain(instances=_instances(rows)[:1]).explanations[0]
    finally:
        endpoint.undeploy_all()
        endpoint.delete()
    assert [p["predicted_size"] for p in got] == [[r["predicted_size"]] for r in rows]
    attribution = explained.attributions[0]
    assert set(attribution.feature_attributions) == {"x", "y", "water"}
    assert attribution.output_name == "size_probs"
    client.query(f"DROP MODEL {dataset}.size_reg").result()
    with pytest.raises(exceptions.NotFound):
        aiplatform.Model(vertex_id)


def test_model_registry_options_are_checked(client, dataset, training):
    base = (f"CREATE MODEL {dataset}.bad_reg OPTIONS(model_type='linear_reg', "
            f"input_label_cols=['weight'], {{}}) AS SELECT x, weight FROM {training}")
    with pytest.raises(exceptions.BadRequest, match="model_registry"):
        client.query(base.format("model_registry='mlflow'")).result()
    with pytest.raises(exceptions.BadRequest, match="vertex_ai_model_id"):
        client.query(base.format("vertex_ai_model_id='x1'")).result()
    with pytest.raises(exceptions.BadRequest, match="vertex_ai_model_id"):
        client.query(base.format("model_registry='vertex_ai', vertex_ai_model_id='Bad ID'")
                     ).result()
    with pytest.raises(exceptions.NotFound):
        client.get_model(f"{dataset}.bad_reg")


def test_dropping_the_dataset_unregisters_its_models(client, training, local_env):
    scratch = f"t_{uuid.uuid4().hex[:10]}"
    client.create_dataset(scratch)
    vertex_id = f"gone_{uuid.uuid4().hex[:6]}"
    client.query(f"CREATE MODEL {scratch}.m OPTIONS(model_type='linear_reg', "
                 f"input_label_cols=['weight'], model_registry='vertex_ai', "
                 f"vertex_ai_model_id='{vertex_id}') AS SELECT x, weight FROM {training}"
                 ).result()
    model = aiplatform.Model(vertex_id)
    assert model.version_id == "1"
    endpoint = model.deploy(machine_type="n1-standard-2")
    # a deployed version cannot leave the registry: nothing is deleted
    with pytest.raises(exceptions.BadRequest, match="undeploy it first"):
        client.delete_dataset(scratch, delete_contents=True)
    with pytest.raises(exceptions.BadRequest, match="undeploy it first"):
        client.delete_model(f"{scratch}.m")
    assert client.get_model(f"{scratch}.m").model_id == "m"
    endpoint.undeploy_all()
    endpoint.delete()
    client.delete_dataset(scratch, delete_contents=True)
    with pytest.raises(exceptions.NotFound):
        aiplatform.Model(vertex_id)
