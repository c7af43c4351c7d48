"""REST wire conformance: the real google-cloud-bigquery client against the local service
(request/response shapes as the client parses them, paging, jobs, datasets, tables, rows,
errors in BigQuery's shape, token and Host refusal)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from google.api_core import exceptions
from google.cloud import bigquery


def test_query_and_wait_and_query_result_agree(client):
    sql = "SELECT x, x * 2 AS doubled FROM UNNEST(GENERATE_ARRAY(1, 5)) AS x ORDER BY x"
    rows_a = [tuple(r.values()) for r in client.query_and_wait(sql)]
    job = client.query(sql)
    rows_b = [tuple(r.values()) for r in job.result()]
    assert rows_a == rows_b == [(i, 2 * i) for i in range(1, 6)]
    assert job.state == "DONE" and job.statement_type == "SELECT"
    # as on BigQuery: the results are an anonymous table (read by the Storage Read API)
    assert job.destination.dataset_id.startswith("_")
    assert job.destination.table_id.startswith("anon")
    assert [f.name for f in job.result().schema] == ["x", "doubled"]


def test_anonymous_columns_are_f0_f1(client):
    rows = client.query_and_wait("SELECT 1, 'a' AS named, 2 + 3")
    assert [f.name for f in rows.schema] == ["f0_", "named", "f1_"]


def test_paging_max_results_page_tokens_and_start_index(client):
    job = client.query("SELECT n FROM UNNEST(GENERATE_ARRAY(0, 249)) AS n ORDER BY n")
    result = job.result(page_size=100)
    pages = [[r.n for r in page] for page in result.pages]
    assert [len(p) for p in pages] == [100, 100, 50]
    assert sum(pages, []) == list(range(250))
    assert result.total_rows == 250
    # a fresh job object: the first one caches its first page, as it does on BigQuery
    tail = [r.n for r in client.get_job(job.job_id).result(start_index=245)]
    assert tail == [245, 246, 247, 248, 249]
    assert [r.n for r in client.get_job(job.job_id).result(max_results=3)] == [0, 1, 2]


def test_jobs_get_list_cancel(client):
    job = client.query("SELECT 42 AS answer")
    job.result()
    again = client.get_job(job.job_id, location=job.location)
    assert again.job_id == job.job_id and again.state == "DONE"
    assert again.query == "SELECT 42 AS answer"
    listed = [j.job_id for j in client.list_jobs(max_results=50)]
    assert job.job_id in listed
    cancelled = client.cancel_job(job.job_id, location=job.location)
    assert cancelled.state == "DONE"
    with pytest.raises(exceptions.NotFound):
        client.get_job("no_such_job_id")


def test_dataset_lifecycle(client):
    ds = bigquery.Dataset(f"{client.project}.wire_ds_lifecycle")
    ds.description = "first"
    ds.labels = {"team": "ml"}
    client.delete_dataset(ds.reference, delete_contents=True, not_found_ok=True)
    created = client.create_dataset(ds)
    assert created.dataset_id == "wire_ds_lifecycle" and created.location == "US"
    with pytest.raises(exceptions.Conflict) as info:
        client.create_dataset(ds)
    assert "Already Exists: Dataset" in str(info.value)
    created.description = "second"
    patched = client.update_dataset(created, ["description"])
    assert client.get_dataset(ds.reference).description == patched.description == "second"
    assert client.get_dataset(ds.reference).labels == {"team": "ml"}
    assert "wire_ds_lifecycle" in [d.dataset_id for d in client.list_datasets()]
    client.query_and_wait("CREATE TABLE wire_ds_lifecycle.t AS SELECT 1 AS a")
    with pytest.raises(exceptions.BadRequest):
        client.delete_dataset(ds.reference)  # not empty
    client.delete_dataset(ds.reference, delete_contents=True)
    with pytest.raises(exceptions.NotFound) as info:
        client.get_dataset(ds.reference)
    assert f"Not found: Dataset {client.project}:wire_ds_lifecycle" in str(info.value)


def test_list_datasets_filters_by_label_and_hides_anonymous_ones(client):
    names = {"wire_lab_a": {"team": "ml", "tier": "gold"}, "wire_lab_b": {"team": "ml"},
             "wire_lab_c": {}}
    for name, labels in names.items():
        ds = bigquery.Dataset(f"{client.project}.{name}")
        ds.labels = labels
        client.create_dataset(ds, exists_ok=True)

    def listed(**kwargs):
        return {d.dataset_id for d in client.list_datasets(**kwargs)} & set(names)

    assert listed() == set(names)
    assert listed(filter="labels.team:ml") == {"wire_lab_a", "wire_lab_b"}
    assert listed(filter="labels.team:ml labels.tier") == {"wire_lab_a"}  # ANDed
    assert listed(filter="labels.team:other") == set()
    with pytest.raises(exceptions.BadRequest, match="filter"):
        listed(filter="team=ml")
    job = client.query("SELECT 1 AS x")
    job.result()
    hidden = job.destination.dataset_id
    assert hidden.startswith("_")
    assert hidden not in {d.dataset_id for d in client.list_datasets()}
    for name in names:
        client.delete_dataset(name)


def test_table_lifecycle_and_rows(client, dataset):
    schema = [bigquery.SchemaField("id", "INTEGER", mode="REQUIRED", description="key"),
              bigquery.SchemaField("name", "STRING"),
              bigquery.SchemaField("tags", "STRING", mode="REPEATED"),
              bigquery.SchemaField("point", "RECORD", fields=[
                  bigquery.SchemaField("x", "FLOAT"), bigquery.SchemaField("y", "FLOAT")])]
    table = client.create_table(bigquery.Table(f"{client.project}.{dataset}.people", schema))
    assert [f.name for f in table.schema] == ["id", "name", "tags", "point"]
    assert table.schema[0].mode == "REQUIRED" and table.schema[0].description == "key"
    assert table.schema[2].mode == "REPEATED" and table.schema[3].field_type == "RECORD"
    with pytest.raises(exceptions.Conflict):
        client.create_table(bigquery.Table(f"{client.project}.{dataset}.people", schema))
    errors = client.insert_rows_json(table, [
        {"id": 1, "name": "ada", "tags": ["a", "b"], "point": {"x": 1.5, "y": 2.0}},
        {"id": 2, "name": None, "tags": [], "point": None}])
    assert errors == []
    bad = client.insert_rows_json(table, [{"id": 3, "nope": 1}])
    assert bad and bad[0]["errors"][0]["reason"] == "invalid"
    rows = sorted(client.list_rows(table), key=lambda r: r.id)
    assert rows[0].name == "ada" and rows[0].tags == ["a", "b"]
    assert rows[0].point == {"x": 1.5, "y": 2.0}
    assert rows[1].name is None and rows[1].tags == [] and rows[1].point is None
    page = list(client.list_rows(table, max_results=1, selected_fields=schema[:2]))
    assert len(page) == 1 and set(page[0].keys()) == {"id", "name"}
    table.description = "people we know"
    table.schema = [*schema, bigquery.SchemaField("age", "INTEGER")]
    updated = client.update_table(table, ["description", "schema"])
    assert updated.description == "people we know" and updated.schema[-1].name == "age"
    assert client.get_table(table).num_rows == 2
    assert [t.table_id for t in client.list_tables(dataset)] == ["people"]
    client.delete_table(table)
    with pytest.raises(exceptions.NotFound) as info:
        client.get_table(table)
    assert f"Not found: Table {client.project}:{dataset}.people" in str(info.value)


def test_error_shapes_and_survival(client, local_env):
    with pytest.raises(exceptions.BadRequest) as info:
        client.query_and_wait("SELEC nonsense")
    assert "Syntax error" in info.value.message
    assert info.value.errors[0]["reason"] == "invalidQuery"
    with pytest.raises(exceptions.NotFound) as info:
        client.query_and_wait("SELECT * FROM nowhere_ds.nothing")
    assert "Not found: Dataset" in info.value.message
    job = client.query("SELECT no_such_column FROM UNNEST([1]) AS x")
    with pytest.raises(exceptions.BadRequest) as info:
        job.result()
    assert "Unrecognized name: no_such_column at [1:8]" in str(info.value)
    assert job.error_result["reason"] == "invalidQuery"
    with pytest.raises(exceptions.BadRequest) as info:
        client.query_and_wait("SELECT ST_BUFFER(ST_GEOGPOINT(1, 2), 10)")
    assert "LAB_BACKEND=gcp" in info.value.message
    # raw bad requests in BigQuery's error shape, then the service still answers
    status, body = _raw(local_env, "POST", f"/bigquery/v2/projects/{client.project}/queries",
                        b"{not json")
    assert status == 400 and body["error"]["code"] == 400
    assert list(client.query_and_wait("SELECT 1 AS ok"))[0].ok == 1


def _raw(env, method, path, data=None, headers=None):
    from labkit.workspace import Workspace

    token = Workspace.from_env().token
    request = urllib.request.Request(env.endpoint + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_token_and_host_refusal(client, local_env):
    path = f"/bigquery/v2/projects/{client.project}/datasets"
    request = urllib.request.Request(local_env.endpoint + path)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 401
    status, body = _raw(local_env, "GET", path, headers={"Host": "evil.example.com"})
    assert status == 403 and "not local" in body["error"]["message"]
    status, body = _raw(local_env, "GET", path)
    assert status == 200 and body["kind"] == "bigquery#datasetList"
