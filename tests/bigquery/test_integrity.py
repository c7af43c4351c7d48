"""Data integrity and containment, through the real client: multi-statement transactions
are atomic, concurrent writers on one table all succeed, errors that BigQuery raises
(division by zero, too many bad records) store nothing, and SQL or request ids cannot
reach the host's file system."""

from __future__ import annotations

import io
import json
import math
import threading
import urllib.error
import urllib.request
import uuid

import pytest
from google.api_core import exceptions
from google.cloud import bigquery


def _ids(client, table: str) -> list[int]:
    return sorted(r.id for r in client.query_and_wait(f"SELECT id FROM {table}"))


# --- 1. multi-statement transactions ------------------------------------------------------

@pytest.fixture
def three(client, dataset, request):
    table = f"{dataset}.tx_{request.node.name.split('[')[0][-20:]}"
    client.query_and_wait(f"CREATE OR REPLACE TABLE {table} AS "
                          "SELECT id FROM UNNEST([1, 2, 3]) AS id")
    return table


def test_rollback_transaction_discards_changes(client, three):
    client.query_and_wait(f"""
        BEGIN TRANSACTION;
        DELETE FROM {three} WHERE id = 1;
        INSERT INTO {three} VALUES (9);
        ROLLBACK TRANSACTION;""")
    assert _ids(client, three) == [1, 2, 3]


def test_error_inside_transaction_rolls_back_and_fails(client, three):
    with pytest.raises(exceptions.BadRequest):
        client.query_and_wait(f"""
            BEGIN TRANSACTION;
            DELETE FROM {three} WHERE id = 1;
            INSERT INTO {three} SELECT CAST('x' AS INT64);
            COMMIT TRANSACTION;""")
    assert _ids(client, three) == [1, 2, 3]


def test_script_ending_inside_transaction_rolls_back(client, three):
    # "The query ends before reaching either of these two statements. In this case,
    # BigQuery automatically rolls back the transaction." (docs: Multi-statement
    # transactions)
    client.query_and_wait(f"BEGIN TRANSACTION; DELETE FROM {three} WHERE id = 1")
    assert _ids(client, three) == [1, 2, 3]
    client.query_and_wait(f"BEGIN; DELETE FROM {three} WHERE id = 2; SELECT 1")
    assert _ids(client, three) == [1, 2, 3]


def test_commit_keeps_changes_and_reads_see_them(client, three):
    rows = client.query_and_wait(f"""
        BEGIN TRANSACTION;
        DELETE FROM {three} WHERE id = 1;
        INSERT INTO {three} VALUES (4);
        SELECT COUNT(*) AS n FROM {three};
        COMMIT TRANSACTION;""")
    assert _ids(client, three) == [2, 3, 4]
    assert [r.n for r in rows] == [3]


def test_script_without_transaction_keeps_earlier_statements(client, three):
    with pytest.raises(exceptions.BadRequest):
        client.query_and_wait(f"""
            DELETE FROM {three} WHERE id = 1;
            INSERT INTO {three} SELECT CAST('x' AS INT64);""")
    assert _ids(client, three) == [2, 3]


def test_transaction_statement_rules(client, three, dataset):
    with pytest.raises(exceptions.BadRequest):  # no nesting
        client.query_and_wait(f"BEGIN TRANSACTION; DELETE FROM {three} WHERE id = 1; "
                              "BEGIN TRANSACTION; COMMIT TRANSACTION;")
    with pytest.raises(exceptions.BadRequest):  # nothing to commit
        client.query_and_wait("COMMIT TRANSACTION")
    with pytest.raises(exceptions.BadRequest):  # permanent DDL is not transactional
        client.query_and_wait(f"BEGIN TRANSACTION; DELETE FROM {three} WHERE id = 1; "
                              f"CREATE TABLE {dataset}.tx_ddl (x INT64); COMMIT TRANSACTION;")
    assert _ids(client, three) == [1, 2, 3]
    assert "tx_ddl" not in [t.table_id for t in client.list_tables(dataset)]


# --- 2. concurrent writers ----------------------------------------------------------------

def test_concurrent_writers_on_one_table_all_succeed(client, dataset):
    table_id = f"{client.project}.{dataset}.busy"
    client.query_and_wait(f"CREATE TABLE `{table_id}` (id INT64, who STRING, n INT64)")
    client.query_and_wait(f"CREATE TABLE `{table_id}_counter` AS SELECT 0 AS n")
    table = client.get_table(table_id)
    threads_n, rounds = 8, 10
    errors: list[str] = []

    def writer(t: int) -> None:
        local = bigquery.Client()
        for i in range(rounds):
            try:
                local.query_and_wait(f"INSERT INTO `{table_id}` VALUES ({t * 1000 + i}, "
                                     f"'dml', 0)")
                got = local.insert_rows(table, [{"id": t * 1000 + 100 + i, "who": "stream",
                                                 "n": 0}])
                if got:
                    errors.append(str(got))
                local.query_and_wait(f"UPDATE `{table_id}` SET n = n + 1 "
                                     f"WHERE id = {t * 1000 + i}")
                local.query_and_wait(f"UPDATE `{table_id}_counter` SET n = n + 1 WHERE TRUE")
                if i % 5 == 0:
                    config = bigquery.LoadJobConfig(source_format="CSV",
                                                    schema=table.schema)
                    local.load_table_from_file(
                        io.BytesIO(f"{t * 1000 + 500 + i},load,0\n".encode()), table_id,
                        job_config=config).result()
                    local.query_and_wait(f"DELETE FROM `{table_id}` "
                                         f"WHERE id = {t * 1000 + 500 + i}")
            except Exception as exc:  # noqa: BLE001 - counted, then asserted empty
                errors.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    rows = list(client.query_and_wait(
        f"SELECT who, COUNT(*) AS c, COUNT(DISTINCT id) AS d, SUM(n) AS s "
        f"FROM `{table_id}` GROUP BY who ORDER BY who"))
    assert [(r.who, r.c, r.d) for r in rows] == [("dml", 80, 80), ("stream", 80, 80)]
    assert rows[0].s == threads_n * rounds
    counter = list(client.query_and_wait(f"SELECT n FROM `{table_id}_counter`"))[0].n
    assert counter == threads_n * rounds


# --- 3. errors BigQuery raises store nothing ----------------------------------------------

@pytest.mark.parametrize("sql", ["SELECT 1/0", "SELECT 0/0", "SELECT NUMERIC '1' / 0",
                                 "SELECT CAST(1 AS FLOAT64) / 0",
                                 "SELECT x / 0 FROM UNNEST([1.5]) AS x"])
def test_division_by_zero_is_an_error(client, sql):
    # BigQuery: "division by zero: 1 / 0" (IEEE_DIVIDE and SAFE_DIVIDE are the ways to
    # get Infinity/NaN or NULL).
    with pytest.raises(exceptions.BadRequest) as info:
        client.query_and_wait(sql)
    assert "division by zero" in info.value.message
    assert info.value.errors[0]["reason"] == "invalidQuery"


def test_division_by_zero_message_and_safe_forms(client):
    with pytest.raises(exceptions.BadRequest) as info:
        client.query_and_wait("SELECT 1/0")
    assert "division by zero: 1 / 0" in info.value.message
    row = list(client.query_and_wait(
        "SELECT IEEE_DIVIDE(1, 0) AS a, IEEE_DIVIDE(-1, 0) AS b, IEEE_DIVIDE(0, 0) AS c, "
        "IEEE_DIVIDE(6, 3) AS d, SAFE_DIVIDE(1, 0) AS e, SAFE_DIVIDE(6, 3) AS f, "
        "IEEE_DIVIDE(NULL, 0) AS g, 7 / 2 AS h"))[0]
    assert row.a == math.inf and row.b == -math.inf and math.isnan(row.c)
    assert row.d == 2.0 and row.e is None and row.f == 2.0 and row.g is None
    assert row.h == 3.5


def test_update_dividing_by_zero_stores_nothing(client, dataset):
    table = f"{dataset}.divs"
    client.query_and_wait(f"CREATE TABLE {table} AS SELECT id, 1.0 * id AS v "
                          "FROM UNNEST(GENERATE_ARRAY(495, 505)) AS id")
    before = sorted((r.id, r.v) for r in client.query_and_wait(f"SELECT * FROM {table}"))
    with pytest.raises(exceptions.BadRequest) as info:
        client.query_and_wait(f"UPDATE {table} SET v = v / (id - 500) WHERE TRUE")
    assert "division by zero" in info.value.message
    after = sorted((r.id, r.v) for r in client.query_and_wait(f"SELECT * FROM {table}"))
    assert after == before


def test_csv_load_with_too_many_bad_records_fails(client, dataset):
    table_id = f"{client.project}.{dataset}.badrows"
    schema = [bigquery.SchemaField("n", "INTEGER"), bigquery.SchemaField("s", "STRING")]
    client.load_table_from_file(io.BytesIO(b"1,a\n2,b\n"), table_id, job_config=bigquery.
                                LoadJobConfig(source_format="CSV", schema=schema)).result()
    data = "".join(f"{i},ok\n" if i % 2 else f"bad{i},x\n" for i in range(600)).encode()
    config = bigquery.LoadJobConfig(source_format="CSV", schema=schema, max_bad_records=1)
    job = client.load_table_from_file(io.BytesIO(data), table_id, job_config=config)
    with pytest.raises(exceptions.BadRequest) as info:
        job.result()
    assert "too many errors" in str(info.value)
    assert job.errors and len(job.errors) > 1
    assert client.get_table(table_id).num_rows == 2
    config = bigquery.LoadJobConfig(source_format="CSV", schema=schema, max_bad_records=300)
    job = client.load_table_from_file(io.BytesIO(data), table_id, job_config=config)
    job.result()
    assert job.output_rows == 300
    assert job._properties["statistics"]["load"]["badRecords"] == "300"
    assert client.get_table(table_id).num_rows == 302
    # with no max_bad_records a single bad row fails the job
    job = client.load_table_from_file(io.BytesIO(b"3,c\nfour,d\n"), table_id, job_config=bigquery.
                                      LoadJobConfig(source_format="CSV", schema=schema))
    with pytest.raises(exceptions.BadRequest):
        job.result()
    assert client.get_table(table_id).num_rows == 302


# --- 4. no way out to the host ------------------------------------------------------------

@pytest.mark.parametrize("sql, name", [
    ("SELECT * FROM read_text('/etc/passwd')", "read_text at [1:15]"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
    ("SELECT * FROM read_parquet('/etc/passwd')", "read_parquet"),
    ("SELECT * FROM parquet_scan('/etc/passwd')", "parquet_scan"),
    ("SELECT * FROM read_json('/etc/passwd')", "read_json"),
    ("SELECT * FROM read_json_auto('/etc/passwd')", "read_json_auto"),
    ("SELECT * FROM read_blob('/etc/passwd')", "read_blob"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
    ("SELECT * FROM query('SELECT 1')", "query"),
    ("SELECT x FROM UNNEST([1]) AS x, read_text('/etc/passwd')", "read_text"),
    ("SELECT * FROM duckdb_tables()", "duckdb_tables"),
    ("SELECT getvariable('x')", "getvariable"),
    ("SELECT current_setting('threads')", "current_setting"),
    ("SELECT (SELECT content FROM read_text('/etc/hostname'))", "read_text"),
])
def test_duckdb_file_functions_are_not_found(client, sql, name):
    with pytest.raises(exceptions.BadRequest) as info:
        client.query_and_wait(sql)
    # ZetaSQL: "Function not found: x", "Table-valued function not found: x"
    assert f"function not found: {name}" in info.value.message.lower()
    assert info.value.errors[0]["reason"] == "invalidQuery"


@pytest.mark.parametrize("sql", [
    "COPY (SELECT 1) TO '/tmp/labkit_escape.csv'",
    "ATTACH '/tmp/labkit_escape.db' AS esc",
    "INSTALL httpfs", "LOAD httpfs", "PRAGMA database_list", "SET threads = 1",
    "SET enable_external_access = true", "EXPORT DATABASE '/tmp/labkit_escape'",
    "IMPORT DATABASE '/tmp/labkit_escape'", "CALL pragma_version()", "CHECKPOINT",
    "DETACH esc", "USE esc", "SELECT * FROM glob('/etc/*')", "SUMMARIZE esc", "VACUUM",
    "CREATE SECRET (TYPE s3)",
])
def test_duckdb_statements_are_refused(client, dataset, sql):
    with pytest.raises(exceptions.BadRequest) as info:
        client.query_and_wait(sql, job_config=bigquery.QueryJobConfig(
            default_dataset=f"{client.project}.{dataset}"))
    assert info.value.errors[0]["reason"] in ("invalidQuery", "invalid")


def test_quoted_paths_are_table_names(client, dataset):
    with pytest.raises(exceptions.NotFound):  # `/etc/passwd` can only be a table name
        client.query_and_wait("SELECT * FROM '/etc/passwd'", job_config=bigquery.
                              QueryJobConfig(default_dataset=f"{client.project}.{dataset}"))


def test_dml_and_ctas_cannot_read_files(client, dataset):
    client.query_and_wait(f"CREATE TABLE {dataset}.stolen (line STRING)")
    for sql in [f"INSERT INTO {dataset}.stolen SELECT content FROM read_text('/etc/passwd')",
                f"CREATE TABLE {dataset}.stolen2 AS SELECT * FROM read_csv('/etc/passwd')"]:
        with pytest.raises(exceptions.BadRequest) as info:
            client.query_and_wait(sql)
        assert "function not found" in info.value.message.lower()
    assert client.get_table(f"{dataset}.stolen").num_rows == 0


def _raw(env, method, path, body=None):
    from labkit.workspace import Workspace

    token = Workspace.from_env().token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(env.endpoint + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_request_ids_cannot_name_paths(client, local_env, dataset):
    from labkit.workspace import Workspace

    root = Workspace.from_env().path("x").parent
    before = {p for p in root.rglob("*") if "escape" in p.name}
    p = client.project
    query = {"query": {"query": "SELECT 1", "useLegacySql": False}}
    cases = [
        ("POST", f"/bigquery/v2/projects/{p}/jobs",
         {"jobReference": {"projectId": "../../escape_project", "jobId": "j1"},
          "configuration": query}),
        ("POST", f"/bigquery/v2/projects/{p}/jobs",
         {"jobReference": {"projectId": p, "jobId": "../../escape_job"},
          "configuration": query}),
        ("POST", f"/bigquery/v2/projects/{p}/jobs",
         {"jobReference": {"projectId": p, "jobId": "j" * 1025}, "configuration": query}),
        ("POST", "/bigquery/v2/projects/..%2F..%2Fescape_url/jobs", {"configuration": query}),
        ("GET", "/bigquery/v2/projects/..%2F..%2Fescape_url/jobs", None),
        ("GET", f"/bigquery/v2/projects/{p}/jobs/..%2F..%2Fescape", None),
        ("POST", f"/bigquery/v2/projects/{p}/datasets",
         {"datasetReference": {"projectId": p, "datasetId": "../escape_ds"}}),
        ("POST", f"/bigquery/v2/projects/{p}/datasets/{dataset}/tables",
         {"tableReference": {"projectId": p, "datasetId": dataset,
                             "tableId": "../escape_table"}}),
        ("POST", f"/bigquery/v2/projects/{p}/queries",
         {"query": "SELECT 1", "useLegacySql": False,
          "defaultDataset": {"projectId": "../escape", "datasetId": "x"}}),
    ]
    for method, path, body in cases:
        status, answer = _raw(local_env, method, path, body)
        assert status == 400, (path, body, answer)
        assert answer["error"]["errors"][0]["reason"] == "invalid", answer
    # a 1024-character job id is valid (and longer than a file name may be)
    long_id = uuid.uuid4().hex + "k" * (1024 - 32)
    status, answer = _raw(local_env, "POST", f"/bigquery/v2/projects/{p}/jobs",
                          {"jobReference": {"projectId": p, "jobId": long_id},
                           "configuration": query})
    assert status == 200 and answer["status"]["state"] == "DONE", answer
    status, again = _raw(local_env, "GET", f"/bigquery/v2/projects/{p}/jobs/{long_id}")
    assert status == 200 and again["jobReference"]["jobId"] == long_id
    after = {p for p in root.rglob("*") if "escape" in p.name}
    assert after == before
    assert not (root.parent / "escape_project").exists()


def test_wrong_json_types_are_bigquery_400s(client, local_env):
    p = client.project
    for path, body in [(f"/bigquery/v2/projects/{p}/queries", {"query": 5}),
                       (f"/bigquery/v2/projects/{p}/jobs",
                        {"configuration": {"query": {"query": ["SELECT 1"]}}})]:
        status, answer = _raw(local_env, "POST", path, body)
        if status == 200:  # jobs.insert: the job failed
            error = answer["status"]["errorResult"]
        else:
            assert status == 400
            error = answer["error"]["errors"][0]
        assert error["reason"] == "invalid" and "Internal error" not in error["message"]
