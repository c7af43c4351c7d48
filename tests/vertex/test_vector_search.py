"""Vertex AI Vector Search through the Vertex SDK: indexes from gs:// files (JSON, CSV,
Avro), batch and streaming updates, public index endpoints, find_neighbors with filters,
read_index_datapoints, undeploy and delete, and the errors Vertex gives for bad input."""

from __future__ import annotations

import io
import json
import uuid

import numpy as np
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform
from google.cloud.aiplatform.matching_engine.matching_engine_index_endpoint import (
    Namespace,
    NumericNamespace,
)
from google.cloud.aiplatform_v1.types import IndexDatapoint

DIM = 8


def _vectors(n, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, DIM)) * 3
    return (centres[rng.integers(0, 20, n)] + rng.standard_normal((n, DIM))).round(4)


def _folder(bucket, files: dict) -> str:
    prefix = f"tests/vector_search/{uuid.uuid4().hex[:8]}"
    for name, data in files.items():
        bucket.blob(f"{prefix}/{name}").upload_from_string(data)
    return f"gs://{bucket.name}/{prefix}"


def _json_lines(x, first=0):
    lines = []
    for i, v in enumerate(x, first):
        record = {"id": str(i), "embedding": v.tolist(),
                  "restricts": [{"namespace": "colour", "allow": ["red" if i % 2 else "blue"]}],
                  "numeric_restricts": [{"namespace": "price", "value_int": i % 50}],
                  "crowding_tag": f"c{i % 5}"}
        lines.append(json.dumps(record))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def vectors():
    return _vectors(3000)


@pytest.fixture(scope="module")
def tree_index(local_env, bucket, vectors):
    uri = _folder(bucket, {"part-0.json": _json_lines(vectors[:2000]),
                           "part-1.json": _json_lines(vectors[2000:], first=2000)})
    index = aiplatform.MatchingEngineIndex.create_tree_ah_index(
        display_name="vs-tree", contents_delta_uri=uri, dimensions=DIM,
        approximate_neighbors_count=150, leaf_node_embedding_count=100,
        leaf_nodes_to_search_percent=20, distance_measure_type="SQUARED_L2_DISTANCE")
    yield index
    for endpoint in aiplatform.MatchingEngineIndexEndpoint.list():
        if any(d.index == index.resource_name for d in endpoint.deployed_indexes):
            endpoint.delete(force=True)
    index.delete()


@pytest.fixture(scope="module")
def endpoint(tree_index):
    endpoint = aiplatform.MatchingEngineIndexEndpoint.create(
        display_name="vs-endpoint", public_endpoint_enabled=True)
    endpoint.deploy_index(index=tree_index, deployed_index_id="tree_one")
    return endpoint


def test_index_from_json_files(tree_index):
    tree_index = aiplatform.MatchingEngineIndex(tree_index.resource_name)
    stats = tree_index.gca_resource.index_stats
    assert stats.vectors_count == 3000
    config = tree_index.to_dict()["metadata"]["config"]
    assert config["distanceMeasureType"] == "SQUARED_L2_DISTANCE"
    assert config["algorithmConfig"]["treeAhConfig"]["leafNodeEmbeddingCount"] == 100


def test_index_survives_a_restart_of_the_services(local_env, tree_index, vectors):
    """What a new services process sees: the index's datapoints read back from the
    workspace (no pickle), its searcher rebuilt."""
    from labkit.vertex.store import ResourceStore
    from labkit.vertex.vector_search.indexes import Indexes
    from labkit.workspace import Workspace

    reopened = Indexes(ResourceStore(Workspace.from_env()), objects=None)
    resource = reopened.by_name(tree_index.resource_name)
    engine = reopened.engine(resource)
    assert len(engine) == 3000
    assert engine.search(vectors[11], 1)[0][0].id == "11"


def test_find_neighbors_against_numpy(endpoint, vectors):
    assert endpoint.public_endpoint_domain_name.endswith(".vdb.vertexai.goog")
    queries = _vectors(20, seed=5)
    found = endpoint.find_neighbors(deployed_index_id="tree_one", queries=queries.tolist(),
                                    num_neighbors=10)
    assert len(found) == 20
    recall = []
    for q, neighbours in zip(queries, found, strict=True):
        d = ((vectors - q) ** 2).sum(1)
        truth = {str(i) for i in np.argsort(d)[:10]}
        recall.append(len(truth & {n.id for n in neighbours}) / 10)
        # the squared L2 distance of each neighbour, as the index defines it
        for n in neighbours:
            assert n.distance == pytest.approx(d[int(n.id)], rel=1e-3)
    assert np.mean(recall) >= 0.9


def test_find_neighbors_filters_crowding_and_full_datapoints(endpoint, vectors):
    q = vectors[7].tolist()
    red = endpoint.find_neighbors(deployed_index_id="tree_one", queries=[q], num_neighbors=10,
                                  filter=[Namespace("colour", ["red"], [])],
                                  return_full_datapoint=True)[0]
    assert len(red) == 10 and all(int(n.id) % 2 == 1 for n in red)
    assert red[0].id == "7" and list(red[0].feature_vector) == pytest.approx(q, abs=1e-4)
    assert red[0].restricts[0].name == "colour" and red[0].crowding_tag == "c2"
    cheap = endpoint.find_neighbors(
        deployed_index_id="tree_one", queries=[q], num_neighbors=10,
        numeric_filter=[NumericNamespace(name="price", value_int=10, op="LESS")])[0]
    assert cheap and all(int(n.id) % 50 < 10 for n in cheap)
    crowded = endpoint.find_neighbors(deployed_index_id="tree_one", queries=[q],
                                      num_neighbors=10, per_crowding_attribute_neighbor_count=1)
    tags = [int(n.id) % 5 for n in crowded[0]]
    assert len(tags) == 5 and len(set(tags)) == 5
    by_id = endpoint.find_neighbors(deployed_index_id="tree_one", embedding_ids=["7"],
                                    num_neighbors=3)[0]
    assert by_id[0].id == "7"
    points = endpoint.read_index_datapoints(deployed_index_id="tree_one", ids=["7", "8", "zz"])
    assert [p.datapoint_id for p in points] == ["7", "8"]
    assert list(points[0].feature_vector) == pytest.approx(q, abs=1e-4)


def test_streaming_index_csv_avro_and_updates(local_env, bucket):
    import fastavro

    x = _vectors(40, seed=3)
    csv_rows = "\n".join(f"{i},{','.join(map(str, v))},colour=red,colour=!blue,#size={i}"
                         for i, v in enumerate(x[:20]))
    schema = fastavro.parse_schema({
        "type": "record", "name": "FeatureVector", "fields": [
            {"name": "id", "type": "string"},
            {"name": "embedding", "type": {"type": "array", "items": "float"}},
            {"name": "restricts", "type": ["null", {"type": "array", "items": {
                "type": "record", "name": "Restrict", "fields": [
                    {"name": "namespace", "type": "string"},
                    {"name": "allow", "type": ["null", {"type": "array", "items": "string"}]},
                    {"name": "deny", "type": ["null", {"type": "array", "items": "string"}]}]}}]},
            {"name": "crowding_tag", "type": ["null", "string"]}]})
    avro = io.BytesIO()
    fastavro.writer(avro, schema, [
        {"id": str(i), "embedding": v.tolist(), "crowding_tag": "a",
         "restricts": [{"namespace": "colour", "allow": ["blue"], "deny": None}]}
        for i, v in enumerate(x[20:], 20)])
    uri = _folder(bucket, {"rows.csv": csv_rows, "more.avro": avro.getvalue(),
                           "ignored/sub.json": "not read"})
    index = aiplatform.MatchingEngineIndex.create_brute_force_index(
        display_name="vs-stream", contents_delta_uri=uri, dimensions=DIM,
        distance_measure_type="DOT_PRODUCT_DISTANCE", index_update_method="STREAM_UPDATE")
    endpoint = aiplatform.MatchingEngineIndexEndpoint.create(
        display_name="vs-stream-endpoint", public_endpoint_enabled=True)
    try:
        assert index.gca_resource.index_stats.vectors_count == 40
        endpoint.deploy_index(index=index, deployed_index_id="stream_one")
        q = x[3].tolist()
        found = endpoint.find_neighbors(deployed_index_id="stream_one", queries=[q],
                                        num_neighbors=40)[0]
        # brute force: exactly numpy's ranking, the dot product reported as the distance
        assert [n.id for n in found] == [str(i) for i in np.argsort(-(x @ x[3]))]
        assert found[0].distance == pytest.approx(float(x[int(found[0].id)]
                                                        @ x[3]), rel=1e-4)
        blue = endpoint.find_neighbors(deployed_index_id="stream_one", queries=[q],
                                       num_neighbors=40, filter=[Namespace("colour", ["blue"])])
        assert {int(n.id) for n in blue[0]} == set(range(20, 40))  # CSV rows deny blue
        index.upsert_datapoints([IndexDatapoint(datapoint_id="new", feature_vector=[100.0] * DIM)])
        index.remove_datapoints(["3"])
        found = endpoint.find_neighbors(deployed_index_id="stream_one", queries=[q],
                                        num_neighbors=3)[0]
        assert "3" not in {n.id for n in found}
        top = endpoint.find_neighbors(deployed_index_id="stream_one", queries=[[1.0] * DIM],
                                      num_neighbors=1)[0]
        assert top[0].id == "new"
        assert aiplatform.MatchingEngineIndex(index.resource_name).gca_resource \
            .index_stats.vectors_count == 40
    finally:
        endpoint.delete(force=True)
        index.delete()


def test_batch_update_and_stream_refusal(local_env, bucket):
    x = _vectors(30, seed=4)
    uri = _folder(bucket, {"a.json": _json_lines(x[:20])})
    index = aiplatform.MatchingEngineIndex.create_brute_force_index(
        display_name="vs-batch", contents_delta_uri=uri, dimensions=DIM)
    try:
        with pytest.raises(exceptions.BadRequest, match="StreamUpdate is not enabled"):
            index.upsert_datapoints([IndexDatapoint(datapoint_id="z", feature_vector=[0.0] * DIM)])
        delta = _folder(bucket, {"b.json": _json_lines(x[20:], first=20),
                                 "delete/ids.txt": "0\n1\n"})
        index.update_embeddings(contents_delta_uri=delta)
        assert index.gca_resource.index_stats.vectors_count == 28
        index.update_embeddings(contents_delta_uri=delta, is_complete_overwrite=True)
        assert aiplatform.MatchingEngineIndex(index.resource_name).gca_resource \
            .index_stats.vectors_count == 10
    finally:
        index.delete()


def test_bad_input_gets_vertex_errors(local_env, bucket, tree_index, endpoint):
    uri = _folder(bucket, {"a.json": _json_lines(_vectors(5))})
    with pytest.raises(exceptions.BadRequest, match="Expected 4, got 8"):
        aiplatform.MatchingEngineIndex.create_brute_force_index(
            display_name="bad", contents_delta_uri=uri, dimensions=4)
    with pytest.raises(exceptions.BadRequest, match="distanceMeasureType"):
        aiplatform.MatchingEngineIndex.create_brute_force_index(
            display_name="bad", contents_delta_uri=uri, dimensions=DIM,
            distance_measure_type="HAMMING_DISTANCE")
    empty = _folder(bucket, {"readme.txt": "no data here"})
    with pytest.raises(exceptions.BadRequest, match="holds no data files"):
        aiplatform.MatchingEngineIndex.create_brute_force_index(
            display_name="bad", contents_delta_uri=empty, dimensions=DIM)
    with pytest.raises(exceptions.BadRequest, match="Expected 8, got 3"):
        endpoint.find_neighbors(deployed_index_id="tree_one", queries=[[1.0, 2.0, 3.0]])
    with pytest.raises(exceptions.NotFound):
        endpoint.find_neighbors(deployed_index_id="nope", queries=[[0.0] * DIM])
    with pytest.raises(exceptions.Conflict, match="already exists"):
        endpoint.deploy_index(index=tree_index, deployed_index_id="tree_one")
    with pytest.raises(exceptions.BadRequest, match="start with a letter"):
        endpoint.deploy_index(index=tree_index, deployed_index_id="1-bad")
    with pytest.raises(exceptions.BadRequest, match="still deployed"):
        tree_index.delete()
    with pytest.raises(exceptions.BadRequest, match="has deployed indexes"):
        endpoint.delete()
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        aiplatform.MatchingEngineIndexEndpoint.create(
            display_name="private", network="projects/1/global/networks/default")


def test_empty_streaming_index_finds_nothing(local_env):
    index = aiplatform.MatchingEngineIndex.create_tree_ah_index(
        display_name="vs-empty", dimensions=DIM, approximate_neighbors_count=10,
        index_update_method="STREAM_UPDATE")
    endpoint = aiplatform.MatchingEngineIndexEndpoint.create(
        display_name="vs-empty-endpoint", public_endpoint_enabled=True)
    try:
        endpoint.deploy_index(index=index, deployed_index_id="empty_one")
        assert endpoint.find_neighbors(deployed_index_id="empty_one",
                                       queries=[[0.5] * DIM]) == [[]]
        endpoint.undeploy_index(deployed_index_id="empty_one")
        assert aiplatform.MatchingEngineIndex(index.resource_name).deployed_indexes == []
    finally:
        endpoint.delete(force=True)
        index.delete()


MALFORMED = [b"{", b"[]", b"5", b'{"metadata": 5}', b'{"metadata": {"config": 5}}',
             b'{"displayName": "x", "metadata": {"config": {"dimensions": "eight"}}}',
             b'{"displayName": "x", "metadata": {"config": {"dimensions": 4, '
             b'"algorithmConfig": {"treeAhConfig": 5}}}}',
             b'{"displayName": "x", "metadata": {"config": {"dimensions": 4}, '
             b'"contentsDeltaUri": 7}}',
             b'{"datapoints": 5}', b'{"datapoints": [5]}',
             b'{"datapoints": [{"datapointId": "a", "featureVector": ["x"]}]}',
             b'{"datapoints": [{"datapointId": "a", "featureVector": [1], "restricts": 5}]}',
             b'{"datapoints": [{"datapointId": "a", "featureVector": [1], '
             b'"numericRestricts": [{"namespace": "n", "valueInt": "z"}]}]}',
             b'{"datapointIds": "a"}', b'{"deployedIndex": 5}',
             b'{"deployedIndex": {"id": "ok", "index": 5, "automaticResources": "x"}}',
             b'{"deployedIndexId": "tree_one", "queries": 5}',
             b'{"deployedIndexId": "tree_one", "queries": [{"datapoint": 5}]}',
             b'{"deployedIndexId": "tree_one", "queries": [{"datapoint": {"featureVector": '
             b'[1,2,3,4,5,6,7,8]}, "neighborCount": "many"}]}',
             b'{"deployedIndexId": "tree_one", "queries": [{"datapoint": {"featureVector": '
             b'[1,2,3,4,5,6,7,8], "numericRestricts": [{"namespace": "p", "valueInt": 1, '
             b'"op": 99}]}}]}',
             b'{"deployedIndexId": "tree_one", "ids": [1, 2]}', b'{"publicEndpointEnabled": 5}']


def test_malformed_requests_get_a_4xx(local_env, tree_index, endpoint):
    import requests

    token = (local_env.workspace / "token").read_text().strip()
    base = f"{local_env.endpoint}/v1/"
    index, ep = tree_index.resource_name, endpoint.resource_name
    parent = index.rsplit("/indexes/", 1)[0]
    targets = [("POST", f"{parent}/indexes"), ("PATCH", index),
               ("POST", f"{index}:upsertDatapoints"), ("POST", f"{index}:removeDatapoints"),
               ("POST", f"{parent}/indexEndpoints"), ("POST", f"{ep}:deployIndex"),
               ("POST", f"{ep}:undeployIndex"), ("POST", f"{ep}:findNeighbors"),
               ("POST", f"{ep}:readIndexDatapoints"), ("GET", f"{parent}/indexes/..%2F..%2Fx"),
               ("DELETE", f"{parent}/indexEndpoints/%00")]
    session = requests.Session()
    failures = []
    for method, path in targets:
        for body in MALFORMED:
            answer = session.request(method, base + path, data=body, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            if not 400 <= answer.status_code < 500 or "error" not in answer.json():
                failures.append((method, path, body, answer.status_code, answer.text[:200]))
    replicas = json.dumps({"deployedIndex": {"id": "ok2", "index": index, "automaticResources":
                                             {"minReplicaCount": "x"}}})
    answer = session.post(f"{base}{ep}:deployIndex", data=replicas, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    if answer.status_code != 400:
        failures.append(("POST", "deployIndex", replicas.encode(), answer.status_code, answer.text))
    assert not failures, "\n".join(f"{m} {p} {b[:90]!r} {s} {t[-150:]}"
                                    for m, p, b, s, t in failures)
    # nothing was half-stored: the index and its endpoint still answer as before
    assert aiplatform.MatchingEngineIndex(index).gca_resource.index_stats.vectors_count == 3000
    assert endpoint.find_neighbors(deployed_index_id="tree_one", queries=[[0.0] * DIM])
