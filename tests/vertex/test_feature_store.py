"""Vertex AI Feature Store through the SDK's feature_store classes (and the aiplatform_v1
clients where the SDK has no method), over tables loaded with the BigQuery client."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1, bigquery
from vertexai.resources.preview import feature_store as fs

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _uid() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def tables(local_env):
    """A time series of user features (two rows for u1, a NULL in the later one) and a
    one-row-per-entity table keyed by two columns."""
    client = bigquery.Client()
    dataset = f"fs_{_uid()}"
    client.create_dataset(bigquery.Dataset(f"{client.project}.{dataset}"))
    series = f"{client.project}.{dataset}.users"
    client.load_table_from_json(
        [{"entity_id": "u1", "feature_timestamp": T0.isoformat(), "age": 30, "score": 0.5,
          "city": "Paris"},
         {"entity_id": "u1", "feature_timestamp": (T0 + timedelta(days=2)).isoformat(),
          "age": 31, "score": None, "city": "Lyon"},
         {"entity_id": "u2", "feature_timestamp": (T0 + timedelta(days=1)).isoformat(),
          "age": 45, "score": 0.9, "city": "Nice"}],
        series, job_config=bigquery.LoadJobConfig(schema=[
            bigquery.SchemaField("entity_id", "STRING"),
            bigquery.SchemaField("feature_timestamp", "TIMESTAMP"),
            bigquery.SchemaField("age", "INT64"), bigquery.SchemaField("score", "FLOAT64"),
            bigquery.SchemaField("city", "STRING")])).result()
    pairs = f"{client.project}.{dataset}.pairs"
    client.query(f"CREATE TABLE `{pairs}` AS SELECT 'a' AS store, 1 AS item, 2.5 AS price, "
                 f"['x', 'y'] AS tags UNION ALL SELECT 'b', 1, 7.0, []").result()
    yield {"series": series, "pairs": pairs, "dataset": dataset}
    client.delete_dataset(dataset, delete_contents=True)


@pytest.fixture(scope="module")
def group(tables):
    group = fs.FeatureGroup.create(f"users_{_uid()}", source=fs.FeatureGroupBigQuerySource(
        uri=f"bq://{tables['series']}", entity_id_columns=["entity_id"]))
    group.create_feature("age")
    group.create_feature("score")
    group.create_feature("home_city", version_column_name="city")
    yield group
    group.delete(force=True)


def test_registry_create_get_list_delete(tables, group):
    assert group.source.uri == f"bq://{tables['series']}"
    assert list(group.source.entity_id_columns) == ["entity_id"]
    names = sorted(f.name for f in group.list_features())
    assert names == ["age", "home_city", "score"]
    city = group.get_feature("home_city")
    assert city.version_column_name == "city"
    assert fs.FeatureGroup(group.name).resource_name == group.resource_name
    assert group.resource_name in [g.resource_name for g in fs.FeatureGroup.list()]

    extra = group.create_feature("age_again", version_column_name="age")
    extra.delete()
    with pytest.raises(exceptions.NotFound):
        group.get_feature("age_again")


def test_registry_refuses_bad_sources(tables, group):
    with pytest.raises(exceptions.BadRequest, match="not found"):
        fs.FeatureGroup.create(f"g_{_uid()}", source=fs.FeatureGroupBigQuerySource(
            uri=f"bq://{tables['series']}_missing", entity_id_columns=["entity_id"]))
    with pytest.raises(exceptions.BadRequest, match="user_id"):
        fs.FeatureGroup.create(f"g_{_uid()}", source=fs.FeatureGroupBigQuerySource(
            uri=f"bq://{tables['series']}", entity_id_columns=["user_id"]))
    with pytest.raises(exceptions.BadRequest, match="feature_timestamp"):  # no time column
        fs.FeatureGroup.create(f"g_{_uid()}", source=fs.FeatureGroupBigQuerySource(
            uri=f"bq://{tables['pairs']}", entity_id_columns=["store"]))
    with pytest.raises(exceptions.BadRequest, match="valid characters"):
        fs.FeatureGroup.create("9bad-id", source=fs.FeatureGroupBigQuerySource(
            uri=f"bq://{tables['series']}"))
    with pytest.raises(exceptions.BadRequest, match="income"):
        group.create_feature("income")
    with pytest.raises(exceptions.Conflict, match="already exists"):
        group.create_feature("age")
    with pytest.raises(exceptions.BadRequest, match="force"):
        group.delete()  # it has features


def test_group_over_a_view_dense_and_location(tables):
    client = bigquery.Client()
    view_id = f"{client.project}.{tables['dataset']}.users_view"
    view_table = bigquery.Table(view_id)
    view_table.view_query = f"SELECT * FROM `{tables['series']}` WHERE age > 0"
    client.create_table(view_table)
    sparse = fs.FeatureGroup.create(f"sparse_{_uid()}", source=fs.FeatureGroupBigQuerySource(
        uri=f"bq://{view_id}", entity_id_columns=["entity_id"]))
    _registry().update_feature_group(feature_group={"name": sparse.resource_name,
                                                    "labels": {"kind": "sparse"}},
                                     update_mask={"paths": ["labels"]}).result()
    assert fs.FeatureGroup(sparse.resource_name).gca_resource.labels["kind"] == "sparse"
    dense_id = f"dense_{_uid()}"
    _registry().create_feature_group(parent=_parent(), feature_group_id=dense_id, feature_group={
        "big_query": {"big_query_source": {"input_uri": f"bq://{view_id}"},
                      "entity_id_columns": ["entity_id"], "dense": True}}).result()
    dense = fs.FeatureGroup(dense_id)
    for group in (sparse, dense):
        group.create_feature("score")
    store = fs.FeatureOnlineStore.create_optimized_store(f"opt_{_uid()}")
    served = {}
    for group in (sparse, dense):
        fv = store.create_feature_view(f"v_{_uid()}", fs.FeatureViewRegistrySource(
            features=[f"{group.name}.score"]))
        fv.sync()
        served[group] = fv.read(key=["u1"]).to_dict()["features"][0].get("value")
    # u1's latest score is NULL: a sparse group serves the earlier 0.5, a dense one the NULL
    assert served == {sparse: {"double_value": 0.5}, dense: None}
    store.delete(force=True)
    for group in (sparse, dense):
        group.delete(force=True)

    eu = f"fs_eu_{_uid()}"
    dataset = bigquery.Dataset(f"{client.project}.{eu}")
    dataset.location = "EU"
    client.create_dataset(dataset)
    client.query(f"CREATE TABLE `{eu}.t` AS SELECT 'a' AS entity_id, 1 AS x, "
                 f"CURRENT_TIMESTAMP() AS feature_timestamp", location="EU").result()
    try:
        with pytest.raises(exceptions.BadRequest, match="is in EU"):
            fs.FeatureGroup.create(f"eu_{_uid()}", source=fs.FeatureGroupBigQuerySource(
                uri=f"bq://{client.project}.{eu}.t", entity_id_columns=["entity_id"]))
    finally:
        client.delete_dataset(eu, delete_contents=True)


def test_online_stores_validate_and_need_force(tables):
    with pytest.raises(exceptions.BadRequest, match="max_node_count"):
        _admin().create_feature_online_store(
            parent=_parent(), feature_online_store_id=f"s_{_uid()}",
            feature_online_store={"bigtable": {"auto_scaling": {
                "min_node_count": 1, "max_node_count": 11}}}).result()
    with pytest.raises(exceptions.BadRequest, match="cpu_utilization_target"):
        _admin().create_feature_online_store(
            parent=_parent(), feature_online_store_id=f"s_{_uid()}",
            feature_online_store={"bigtable": {"auto_scaling": {
                "min_node_count": 1, "max_node_count": 2, "cpu_utilization_target": 90}}}
        ).result()
    store = fs.FeatureOnlineStore.create_bigtable_store(f"bt_{_uid()}", max_node_count=3)
    assert store.feature_online_store_type == fs.FeatureOnlineStoreType.BIGTABLE
    assert store.gca_resource.bigtable.auto_scaling.cpu_utilization_target == 50
    _admin().update_feature_online_store(
        feature_online_store={"name": store.resource_name, "bigtable": {"auto_scaling": {
            "min_node_count": 2, "max_node_count": 20}}},
        update_mask={"paths": ["bigtable.auto_scaling"]}).result()
    assert fs.FeatureOnlineStore(store.name).gca_resource.bigtable.auto_scaling.max_node_count \
        == 20
    with pytest.raises(exceptions.BadRequest, match="max_node_count"):
        _admin().update_feature_online_store(
            feature_online_store={"name": store.resource_name, "bigtable": {"auto_scaling": {
                "min_node_count": 2, "max_node_count": 21}}},
            update_mask={"paths": ["bigtable.auto_scaling"]}).result()
    store.create_feature_view(f"v_{_uid()}", fs.FeatureViewBigQuerySource(
        uri=f"bq://{tables['pairs']}", entity_id_columns=["store", "item"]))
    with pytest.raises(exceptions.BadRequest, match="force"):
        store.delete()
    store.delete(force=True)
    with pytest.raises(exceptions.NotFound):
        fs.FeatureOnlineStore(store.name)


def test_registry_view_serves_latest_non_null_values(group):
    store = fs.FeatureOnlineStore.create_optimized_store(f"opt_{_uid()}")
    assert store.gca_resource.dedicated_serving_endpoint.public_endpoint_domain_name
    view = store.create_feature_view(f"users_{_uid()}", fs.FeatureViewRegistrySource(
        features=[f"{group.name}.age", f"{group.name}.score", f"{group.name}.home_city"]))
    with pytest.raises(exceptions.BadRequest, match="synced"):
        view.read(key=["u1"])
    sync = view.sync()
    assert sync.gca_resource.final_status.code == 0
    assert sync.gca_resource.sync_summary.row_synced == 2
    assert [s.resource_name for s in view.list_syncs()] == [sync.resource_name]
    assert view.get_sync(sync.name).resource_name == sync.resource_name

    values = {f["name"]: f.get("value") for f in view.read(key=["u1"]).to_dict()["features"]}
    # the latest row (day 2) has age 31 and Lyon; its score is NULL, so day 0's 0.5 serves
    assert values["age"] == {"int64_value": "31"}
    assert values["home_city"] == {"string_value": "Lyon"}
    assert values["score"] == {"double_value": 0.5}
    assert int(values["feature_timestamp"]["int64_value"]) == \
        int((T0 + timedelta(days=2)).timestamp() * 1_000_000)

    client = _serving()
    proto = client.fetch_feature_values(request={
        "feature_view": view.resource_name, "data_key": {"key": "u2"},
        "data_format": aiplatform_v1.FeatureViewDataFormat.PROTO_STRUCT})
    assert dict(proto.proto_struct) == {"age": 45, "score": 0.9, "home_city": "Nice",
                                        "feature_timestamp": proto.proto_struct[
                                            "feature_timestamp"]}
    assert proto.data_key.key == "u2"
    beta = _serving("v1beta1")  # the deprecated id and format still answer on v1beta1
    old = beta.fetch_feature_values(request={"feature_view": view.resource_name, "id": "u2",
                                             "format_": 2})
    assert old.proto_struct["home_city"] == "Nice"
    with pytest.raises(exceptions.NotFound):
        view.read(key=["nobody"])
    with pytest.raises(exceptions.BadRequest, match="part"):
        view.read(key=["u1", "extra"])
    store.delete(force=True)


def test_bigquery_view_composite_key_and_resync(tables):
    store = fs.FeatureOnlineStore.create_bigtable_store(f"bt_{_uid()}")
    view = store.create_feature_view(f"pairs_{_uid()}", fs.FeatureViewBigQuerySource(
        uri=f"bq://{tables['pairs']}", entity_id_columns=["store", "item"]),
        sync_config="TZ=America/New_York 0 9 * * *")
    assert view.gca_resource.sync_config.cron == "TZ=America/New_York 0 9 * * *"
    view.sync()
    values = {f["name"]: f.get("value") for f in view.read(key=["a", "1"]).to_dict()["features"]}
    assert values == {"price": {"double_value": 2.5},
                      "tags": {"string_array_value": {"values": ["x", "y"]}}}
    with pytest.raises(exceptions.BadRequest, match="composite_key"):
        _serving().fetch_feature_values(feature_view=view.resource_name,
                                        data_key={"key": "a"})

    bigquery.Client().query(f"INSERT INTO `{tables['pairs']}` VALUES ('c', 2, 1.0, [])").result()
    with pytest.raises(exceptions.NotFound):
        view.read(key=["c", "2"])  # not until the next sync
    view.sync()
    assert view.read(key=["c", "2"]).to_dict()["features"][0]["value"] == {"double_value": 1.0}
    assert len(view.list_syncs()) == 2
    store.delete(force=True)


def test_bigquery_view_with_duplicate_ids_fails_its_sync(tables):
    store = fs.FeatureOnlineStore.create_optimized_store(f"opt_{_uid()}")
    view = store.create_feature_view(f"dup_{_uid()}", fs.FeatureViewBigQuerySource(
        uri=f"bq://{tables['series']}", entity_id_columns=["entity_id"]))
    sync = view.sync()
    assert sync.gca_resource.final_status.code == 3
    assert "more than one row" in sync.gca_resource.final_status.message
    store.delete(force=True)


def test_feature_views_refuse_bad_input(tables, group):
    store = fs.FeatureOnlineStore.create_optimized_store(f"opt_{_uid()}")
    source = fs.FeatureViewBigQuerySource(uri=f"bq://{tables['pairs']}",
                                          entity_id_columns=["store", "item"])
    with pytest.raises(exceptions.BadRequest, match="cron"):
        store.create_feature_view(f"v_{_uid()}", source, sync_config="every day")
    with pytest.raises(exceptions.BadRequest, match="sku"):
        store.create_feature_view(f"v_{_uid()}", fs.FeatureViewBigQuerySource(
            uri=f"bq://{tables['pairs']}", entity_id_columns=["sku"]))
    with pytest.raises(exceptions.NotFound):
        store.create_feature_view(f"v_{_uid()}", fs.FeatureViewRegistrySource(
            features=[f"{group.name}.no_such_feature"]))
    with pytest.raises(exceptions.BadRequest, match="Continuous"):
        _admin().create_feature_view(parent=store.resource_name, feature_view_id=f"v_{_uid()}",
                                     feature_view={"big_query_source": {
                                         "uri": f"bq://{tables['pairs']}",
                                         "entity_id_columns": ["store"]},
                                         "sync_config": {"continuous": True}}).result()
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        store.create_feature_view(f"v_{_uid()}", source, index_config=fs.IndexConfig(
            embedding_column="tags", dimensions=2, algorithm_config=fs.TreeAhConfig()))
    view = store.create_feature_view(f"v_{_uid()}", source)
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        view.search(entity_id="a")
    with pytest.raises(exceptions.MethodNotImplemented, match="Private Service Connect"):
        fs.FeatureOnlineStore.create_optimized_store(
            f"psc_{_uid()}", enable_private_service_connect=True, project_allowlist=["p"])
    store.delete(force=True)


def test_run_sync_immediately(tables):
    store = fs.FeatureOnlineStore.create_optimized_store(f"opt_{_uid()}")
    view = _admin().create_feature_view(request={
        "parent": store.resource_name, "feature_view_id": f"v_{_uid()}",
        "run_sync_immediately": True,
        "feature_view": {"big_query_source": {"uri": f"bq://{tables['pairs']}",
                                              "entity_id_columns": ["store", "item"]}}}
    ).result()
    syncs = list(_admin().list_feature_view_syncs(parent=view.name))
    assert len(syncs) == 1 and syncs[0].sync_summary.row_synced >= 2
    assert fs.FeatureView(view.name).read(key=["b", "1"]).to_dict()["features"]
    store.delete(force=True)


def test_cron_syncs_when_due(tables, tmp_path):
    """The scheduler's tick, driven with explicit moments, over the same BigQuery."""
    from labkit.vertex.feature_store.online_stores import OnlineStores
    from labkit.vertex.feature_store.registry import FeatureRegistry
    from labkit.vertex.feature_store.serving import OnlineServing
    from labkit.vertex.store import ResourceStore
    from labkit.workspace import Workspace

    class Client:  # what the wiring's LocalBigQuery offers: the real client
        def client(self):
            return bigquery.Client()

    store = ResourceStore(Workspace(tmp_path))
    online = OnlineStores(store, FeatureRegistry(store, Client()), Client(),
                          OnlineServing(tmp_path / "data"))
    online.stop.set()  # driven by hand below
    parent = "projects/p/locations/us-central1"
    online.create_store(parent, {"optimized": {}}, "s")
    online.create_view(f"{parent}/featureOnlineStores/s", {
        "bigQuerySource": {"uri": f"bq://{tables['pairs']}", "entityIdColumns": ["store"]},
        "syncConfig": {"cron": "0 9 * * *"}}, "v", False)
    view = f"{parent}/featureOnlineStores/s/featureViews/v"
    created = datetime.fromisoformat(online.get_view(view)["createTime"].replace("Z", "+00:00"))
    assert online.tick(created) == []  # the next 09:00 is still to come
    next_nine = (created + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    ran = online.tick(next_nine + timedelta(days=1))
    assert len(ran) == 1 and online.get_sync(ran[0])["syncSummary"]["rowSynced"] != "0"
    assert online.tick(next_nine + timedelta(days=1)) == []  # not twice for one due time


def _parent() -> str:
    from google.cloud import aiplatform

    return f"projects/{aiplatform.initializer.global_config.project}/locations/" \
           f"{aiplatform.initializer.global_config.location}"


def _registry():
    from google.cloud.aiplatform import initializer, utils

    return initializer.global_config.create_client(
        client_class=utils.FeatureRegistryClientWithOverride).select_version("v1")


def _admin():
    from google.cloud.aiplatform import initializer, utils

    return initializer.global_config.create_client(
        client_class=utils.FeatureOnlineStoreAdminClientWithOverride).select_version("v1")


def _serving(version: str = "v1"):
    from google.cloud.aiplatform import initializer, utils

    return initializer.global_config.create_client(
        client_class=utils.FeatureOnlineStoreClientWithOverride).select_version(version)


def test_a_client_sent_to_the_public_endpoint_domain_is_refused(local_env):
    """Only the SDK's api_endpoint reaches the local store: a client pointed at the store's
    own domain goes through the proxy, which refuses it rather than send it to Google."""
    from google.cloud.aiplatform import initializer

    store = fs.FeatureOnlineStore.create_optimized_store(f"opt_{_uid()}")
    domain = store.gca_resource.dedicated_serving_endpoint.public_endpoint_domain_name
    assert domain.endswith(".featurestore.vertexai.goog")
    client = aiplatform_v1.FeatureOnlineStoreServiceClient(
        transport="rest", credentials=initializer.global_config.credentials,
        client_options={"api_endpoint": domain})
    with pytest.raises(Exception, match="403"):
        client.fetch_feature_values(feature_view=f"{store.resource_name}/featureViews/v",
                                    data_key={"key": "a"}, timeout=30)
    store.delete()


@pytest.mark.parametrize("path, body", [
    ("featureGroups?featureGroupId=g_junk", {"bigQuery": "bq://x.y.z"}),
    ("featureGroups?featureGroupId=g_junk", {"bigQuery": {"bigQuerySource": {
        "inputUri": "bq://x.y.z"}, "entityIdColumns": "entity_id"}}),
    ("featureOnlineStores?featureOnlineStoreId=s_junk",
     {"bigtable": {"autoScaling": {"minNodeCount": "many", "maxNodeCount": 2}}}),
    ("featureOnlineStores?featureOnlineStoreId=s_junk", {"bigtable": {"autoScaling": []}}),
    ("featureOnlineStores?featureOnlineStoreId=s_junk", {"optimized": {}, "labels": ["a"]}),
])
def test_junk_bodies_are_400s(local_env, path, body):
    """Bodies with the right field names and the wrong JSON types: a 400, never a 500."""
    import google.auth.transport.requests
    from google.cloud.aiplatform import initializer

    session = google.auth.transport.requests.AuthorizedSession(
        initializer.global_config.credentials)
    answer = session.post(f"{initializer.global_config.api_endpoint}/v1/{_parent()}/{path}",
                          json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_junk_fetch_bodies_are_400s(tables):
    import google.auth.transport.requests
    from google.cloud.aiplatform import initializer

    store = fs.FeatureOnlineStore.create_optimized_store(f"opt_{_uid()}")
    view = store.create_feature_view(f"v_{_uid()}", fs.FeatureViewBigQuerySource(
        uri=f"bq://{tables['pairs']}", entity_id_columns=["store", "item"]), )
    view.sync()
    session = google.auth.transport.requests.AuthorizedSession(
        initializer.global_config.credentials)
    url = f"{initializer.global_config.api_endpoint}/v1/{view.resource_name}:fetchFeatureValues"
    for body in ({"dataKey": "a"}, {"dataKey": {"compositeKey": ["a", "1"]}},
                 {"dataKey": {"key": 5}}, {"dataKey": {"key": "a"}, "dataFormat": ["x"]}):
        answer = session.post(url, json=body)
        assert answer.status_code == 400, (body, answer.text)
    store.delete(force=True)
