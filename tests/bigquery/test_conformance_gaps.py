"""Gaps google-cloud-bigquery's own system tests found (tests/conformance), closed and
checked here through the real client: INTERVAL values, BigQuery's text forms of BYTES and
FLOAT64 in loads, tables created without a schema, external tables refused."""

from __future__ import annotations

import io
import json
import math
import uuid

import pytest
from dateutil.relativedelta import relativedelta
from google.api_core import exceptions
from google.cloud import bigquery


def _load_json(client, table_id: str, rows: list[dict], schema: list) -> bigquery.LoadJob:
    data = io.BytesIO("\n".join(json.dumps(r) for r in rows).encode())
    config = bigquery.LoadJobConfig(schema=schema,
                                    source_format="NEWLINE_DELIMITED_JSON")
    return client.load_table_from_file(data, table_id, job_config=config).result()


@pytest.fixture
def table_id(client, dataset):
    return f"{client.project}.{dataset}.t_{uuid.uuid4().hex[:8]}"


def test_interval_loads_iso_8601_and_canonical_text_and_reads_back(client, table_id):
    schema = [bigquery.SchemaField("i", "INTEGER"), bigquery.SchemaField("d", "INTERVAL")]
    _load_json(client, table_id, [{"i": 0, "d": "P7Y11M9DT4H15M37.123456S"},
                                  {"i": 1, "d": "-1-2 -3 -4:05:06.5"},
                                  {"i": 2, "d": "PT0.000001S"},
                                  {"i": 3, "d": None}], schema)
    rows = {r["i"]: r["d"] for r in client.query(
        f"SELECT i, d FROM `{table_id}` ORDER BY i").result()}
    assert rows[0] == relativedelta(years=7, months=11, days=9, hours=4, minutes=15,
                                    seconds=37, microseconds=123456)
    assert rows[1] == relativedelta(years=-1, months=-2, days=-3, hours=-4, minutes=-5,
                                    seconds=-6, microseconds=-500000)
    assert rows[2] == relativedelta(microseconds=1)
    assert rows[3] is None
    # arithmetic stays an INTERVAL; list_rows (tabledata) prints the same canonical text
    total = list(client.query(f"SELECT d + INTERVAL 1 DAY AS e FROM `{table_id}` "
                              "WHERE i = 2").result())[0]["e"]
    assert total == relativedelta(days=1, microseconds=1)
    listed = {r["i"]: r["d"] for r in client.list_rows(table_id)}
    assert listed == rows


def test_interval_that_is_not_one_fails_the_load_and_keeps_the_table(client, table_id):
    schema = [bigquery.SchemaField("d", "INTERVAL")]
    _load_json(client, table_id, [{"d": "P1D"}], schema)
    with pytest.raises(exceptions.BadRequest, match="INTERVAL"):
        _load_json(client, table_id, [{"d": "P1D"}, {"d": "one day"}], schema)
    assert client.get_table(table_id).num_rows == 1


def test_bytes_are_base64_and_floats_take_inf_and_nan_in_json_loads(client, table_id):
    schema = [bigquery.SchemaField("i", "INTEGER"), bigquery.SchemaField("b", "BYTES"),
              bigquery.SchemaField("f", "FLOAT")]
    _load_json(client, table_id, [{"i": 0, "b": "SGVsbG8sIFdvcmxkIQ==", "f": "+inf"},
                                  {"i": 1, "b": "DQo=\n", "f": "nan"},
                                  {"i": 2, "b": "", "f": "-inf"},
                                  {"i": 3, "b": None, "f": 1.25}], schema)
    rows = list(client.list_rows(table_id, selected_fields=schema))
    rows.sort(key=lambda r: r["i"])
    assert [r["b"] for r in rows] == [b"Hello, World!", b"\r\n", b"", None]
    floats = [r["f"] for r in rows]
    assert floats[0] == math.inf and math.isnan(floats[1]) and floats[2] == -math.inf
    assert floats[3] == 1.25
    with pytest.raises(exceptions.BadRequest):
        _load_json(client, table_id, [{"i": 4, "b": "not base64!", "f": 0}], schema)


def test_table_created_without_a_schema_is_empty_then_takes_one(client, table_id):
    table = client.create_table(table_id)
    assert table.schema == []
    assert list(client.list_rows(table_id)) == []
    table.schema = [bigquery.SchemaField("name", "STRING", mode="REQUIRED")]
    table = client.update_table(table, ["schema"])
    assert [(f.name, f.mode) for f in table.schema] == [("name", "REQUIRED")]
    client.insert_rows_json(table_id, [{"name": "ada"}])
    assert [r["name"] for r in client.list_rows(table_id)] == ["ada"]


def test_a_load_gives_a_schemaless_table_its_schema_and_keeps_dispositions(client, table_id):
    client.create_table(table_id)
    schema = [bigquery.SchemaField("x", "INTEGER")]
    _load_json(client, table_id, [{"x": 1}, {"x": 2}], schema)
    table = client.get_table(table_id)
    assert [f.name for f in table.schema] == ["x"] and table.num_rows == 2
    missing = f"{table_id}_missing"
    config = bigquery.LoadJobConfig(schema=schema, source_format="NEWLINE_DELIMITED_JSON",
                                    create_disposition="CREATE_NEVER")
    with pytest.raises(exceptions.NotFound):
        client.load_table_from_file(io.BytesIO(b'{"x": 1}'), missing,
                                    job_config=config).result()


def test_external_tables_are_refused_not_created_empty(client, table_id):
    table = bigquery.Table(table_id)
    external = bigquery.ExternalConfig("CSV")
    external.source_uris = ["gs://some-bucket/data.csv"]
    table.external_data_configuration = external
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        client.create_table(table)
    with pytest.raises(exceptions.NotFound):
        client.get_table(table_id)


def test_default_value_expressions_fill_rows_written_without_the_column(client, table_id):
    schema = [bigquery.SchemaField("name", "STRING"),
              bigquery.SchemaField("kind", "STRING", default_value_expression="'FOO'"),
              bigquery.SchemaField("at", "TIMESTAMP",
                                   default_value_expression="CURRENT_TIMESTAMP()")]
    client.create_table(bigquery.Table(table_id, schema=schema))
    got = client.get_table(table_id)
    assert [f.default_value_expression for f in got.schema] == [None, "'FOO'",
                                                                "CURRENT_TIMESTAMP()"]
    assert client.insert_rows_json(table_id, [{"name": "a"}, {"name": "b", "kind": "bar"}]) == []
    rows = {r["name"]: r for r in client.list_rows(table_id)}
    assert rows["a"]["kind"] == "FOO" and rows["a"]["at"] is not None
    assert rows["b"]["kind"] == "bar"
    with pytest.raises(exceptions.BadRequest):
        client.create_table(bigquery.Table(
            f"{table_id}_bad", schema=[bigquery.SchemaField(
                "x", "INT64", default_value_expression="NO_SUCH_FUNCTION(")]))


def test_table_constraints_are_kept_checked_and_removable(client, table_id):
    from google.cloud.bigquery.table import (
        ColumnReference,
        ForeignKey,
        PrimaryKey,
        TableConstraints,
        TableReference,
    )

    parent = client.create_table(bigquery.Table(
        f"{table_id}_p", schema=[bigquery.SchemaField("id", "INTEGER", mode="REQUIRED")]))
    child = client.create_table(bigquery.Table(
        table_id, schema=[bigquery.SchemaField("pid", "INTEGER")]))
    key = ForeignKey(name="fk", referenced_table=TableReference.from_string(parent.full_table_id
                                                                              .replace(":", ".")),
                     column_references=[ColumnReference("pid", "id")])
    child.table_constraints = TableConstraints(primary_key=PrimaryKey(["pid"]),
                                               foreign_keys=[key])
    got = client.update_table(child, ["table_constraints"]).table_constraints
    assert got.primary_key.columns == ["pid"] and got.foreign_keys[0].name == "fk"
    child.table_constraints = TableConstraints(primary_key=PrimaryKey(["nope"]),
                                               foreign_keys=None)
    with pytest.raises(exceptions.BadRequest, match="nope"):
        client.update_table(child, ["table_constraints"])
    child.table_constraints = None
    assert client.update_table(child, ["table_constraints"]).table_constraints is None


def test_an_emptied_policy_tag_list_leaves_no_policy_tags(client, table_id):
    from google.cloud.bigquery.schema import PolicyTagList

    tag = "projects/p/locations/us/taxonomies/1/policyTags/2"
    table = client.create_table(bigquery.Table(table_id, schema=[
        bigquery.SchemaField("x", "STRING", policy_tags=PolicyTagList([tag]))]))
    assert list(table.schema[0].policy_tags.names) == [tag]
    table.schema = [bigquery.SchemaField("x", "STRING", policy_tags=PolicyTagList())]
    assert client.update_table(table, ["schema"]).schema[0].policy_tags is None


def test_time_of_a_timestamp_is_its_utc_time_of_day(client):
    import datetime as dt

    row = list(client.query(
        'SELECT TIME(TIMESTAMP "2016-12-05 12:41:09") AS a, '
        'TIME(DATETIME "2016-12-05 23:59:58.5") AS b, '
        'TIME(TIMESTAMP "2016-12-05 12:41:09+02:00") AS c, TIME("07:08:09") AS d, '
        'TIME(TIMESTAMP "2016-12-05 12:41:09", "America/New_York") AS e').result())[0]
    assert row["a"] == dt.time(12, 41, 9) and row["b"] == dt.time(23, 59, 58, 500000)
    assert row["c"] == dt.time(10, 41, 9) and row["d"] == dt.time(7, 8, 9)
    assert row["e"] == dt.time(7, 41, 9)


def test_range_columns_load_from_text_and_read_back_with_unbounded_ends(client, table_id):
    import datetime as dt

    schema = [bigquery.SchemaField("i", "INTEGER"),
              bigquery.SchemaField("d", "RANGE", range_element_type="DATE"),
              bigquery.SchemaField("t", "RANGE", range_element_type="TIMESTAMP")]
    _load_json(client, table_id, [
        {"i": 0, "d": "[2020-01-01, 2020-02-01)",
         "t": "[2020-01-01 10:00:00+00, UNBOUNDED)"},
        {"i": 1, "d": None, "t": "[UNBOUNDED, UNBOUNDED)"}], schema)
    table = client.get_table(table_id)
    assert [(f.field_type, f.range_element_type and f.range_element_type.element_type)
            for f in table.schema] == [("INTEGER", None), ("RANGE", "DATE"),
                                       ("RANGE", "TIMESTAMP")]
    rows = sorted(client.list_rows(table_id), key=lambda r: r["i"])
    assert rows[0]["d"] == {"start": dt.date(2020, 1, 1), "end": dt.date(2020, 2, 1)}
    assert rows[0]["t"] == {"start": dt.datetime(2020, 1, 1, 10, tzinfo=dt.UTC), "end": None}
    assert rows[1]["d"] is None and rows[1]["t"] == {"start": None, "end": None}
    for bad in ("2020-01-01 to 2020-02-01", "[2020-02-01, 2020-01-01)"):
        with pytest.raises(exceptions.BadRequest, match="RANGE"):
            _load_json(client, table_id, [{"i": 2, "d": bad}], schema)
    assert client.get_table(table_id).num_rows == 2


def test_range_query_parameters_and_element_types(client, table_id):
    import datetime as dt

    from google.cloud.bigquery.query import RangeQueryParameter

    config = bigquery.QueryJobConfig(query_parameters=[
        RangeQueryParameter(name="r", range_element_type="DATETIME",
                            start=dt.datetime(2016, 12, 5))])
    row = list(client.query("SELECT @r AS r", job_config=config).result())[0]
    assert row["r"] == {"start": dt.datetime(2016, 12, 5), "end": None}
    with pytest.raises(exceptions.BadRequest, match="rangeElementType"):
        client.create_table(bigquery.Table(table_id, schema=[
            bigquery.SchemaField("r", "RANGE", range_element_type="INT64")]))


def test_anonymous_struct_fields_are_named_by_position(client):
    row = list(client.query(
        "SELECT (1, 'a') AS t, STRUCT(2 AS x, 3) AS s, [(4, 5)] AS l, "
        "((6, 7), 8) AS n, 1 IN (1, 2) AS i").result())[0]
    assert row["t"] == {"_field_1": 1, "_field_2": "a"}
    assert row["s"] == {"x": 2, "_field_2": 3}
    assert row["l"] == [{"_field_1": 4, "_field_2": 5}]
    assert row["n"] == {"_field_1": {"_field_1": 6, "_field_2": 7}, "_field_2": 8}
    assert row["i"] is True
    config = bigquery.QueryJobConfig(query_parameters=[
        bigquery.ScalarQueryParameter("q", "STRING", "why"),
        bigquery.ScalarQueryParameter("a", "INT64", 42)])
    row = list(client.query("SELECT (@q, @a) AS p", job_config=config).result())[0]
    assert row["p"] == {"_field_1": "why", "_field_2": 42}


def test_service_account_and_table_permissions_of_the_local_owner(client, table_id):
    assert client.get_service_account_email().endswith(
        "@bigquery-encryption.iam.gserviceaccount.com")
    table = client.create_table(table_id)
    asked = ["bigquery.tables.get", "bigquery.tables.getData", "bigquery.tables.update"]
    assert set(client.test_iam_permissions(table, asked)["permissions"]) == set(asked)
    assert set(client.test_iam_permissions(table, [asked])["permissions"]) == set(asked)
    public = "bigquery-public-data.ml_datasets.penguins"
    assert client.test_iam_permissions(public, asked)["permissions"] == asked[:2]
    with pytest.raises(exceptions.BadRequest, match="wildcards"):
        client.test_iam_permissions(table, ["bigquery.*"])
    with pytest.raises(exceptions.NotFound):
        client.test_iam_permissions(f"{table_id}_missing", asked)


def _copy(client, sources, dest, **config):
    return client.copy_table(sources, dest, job_config=bigquery.CopyJobConfig(**config)).result()


def test_copy_jobs_copy_append_and_refuse_as_bigquery_does(client, table_id):
    schema = [bigquery.SchemaField("n", "INTEGER", mode="REQUIRED", description="a number")]
    a, b = f"{table_id}_a", f"{table_id}_b"
    for name, values in ((a, [1, 2]), (b, [3])):
        client.create_table(bigquery.Table(name, schema=schema))
        client.insert_rows_json(name, [{"n": v} for v in values])
    job = _copy(client, [a, b], table_id)
    assert job.state == "DONE" and job._properties["statistics"]["copy"]["copiedRows"] == "3"
    copied = client.get_table(table_id)
    assert copied.schema[0].description == "a number" and copied.num_rows == 3
    with pytest.raises(exceptions.Conflict):  # copy jobs default to WRITE_EMPTY
        _copy(client, a, table_id)
    _copy(client, a, table_id, write_disposition="WRITE_APPEND")
    assert sorted(r["n"] for r in client.list_rows(table_id)) == [1, 1, 2, 2, 3]
    _copy(client, b, table_id, write_disposition="WRITE_TRUNCATE")
    assert [r["n"] for r in client.list_rows(table_id)] == [3]
    with pytest.raises(exceptions.NotFound):
        _copy(client, f"{table_id}_missing", f"{table_id}_c")
    with pytest.raises(exceptions.NotFound):
        _copy(client, a, f"{table_id}_c", create_disposition="CREATE_NEVER")
    view = bigquery.Table(f"{table_id}_v")
    view.view_query = f"SELECT * FROM `{a}`"
    view = client.create_table(view)
    with pytest.raises(exceptions.BadRequest, match="view"):
        _copy(client, view, f"{table_id}_c")


def test_snapshots_are_read_only_and_restore_clones_are_writable(client, table_id):
    from google.cloud.bigquery import OperationType

    client.create_table(bigquery.Table(table_id, schema=[bigquery.SchemaField("n", "INT64")]))
    client.insert_rows_json(table_id, [{"n": 1}])
    snap, clone = f"{table_id}_snap", f"{table_id}_clone"
    _copy(client, table_id, snap, operation_type=OperationType.SNAPSHOT,
          destination_expiration_time="2999-01-01T00:00:00Z")
    got = client.get_table(snap)
    assert got.table_type == "SNAPSHOT" and got.expires.year == 2999
    assert got.snapshot_definition.base_table_reference.table_id == table_id.split(".")[-1]
    client.insert_rows_json(table_id, [{"n": 2}])
    assert [r["n"] for r in client.list_rows(snap)] == [1]
    with pytest.raises(exceptions.BadRequest, match="read-only"):
        client.insert_rows_json(snap, [{"n": 9}])
    with pytest.raises(exceptions.BadRequest, match="read-only"):
        _load_json(client, snap, [{"n": 9}], [bigquery.SchemaField("n", "INT64")])
    with pytest.raises(exceptions.BadRequest, match="not a table snapshot"):
        _copy(client, table_id, clone, operation_type=OperationType.RESTORE)
    _copy(client, snap, table_id, operation_type=OperationType.RESTORE,
          write_disposition="WRITE_TRUNCATE")
    restored = client.get_table(table_id)
    assert restored.table_type == "TABLE" and restored.num_rows == 1
    _copy(client, table_id, clone, operation_type=OperationType.CLONE)
    assert client.get_table(clone).clone_definition is not None
    assert client.insert_rows_json(clone, [{"n": 5}]) == []
    with pytest.raises(exceptions.BadRequest, match="past"):
        _copy(client, table_id, f"{table_id}_old", operation_type=OperationType.SNAPSHOT,
              destination_expiration_time="2001-01-01T00:00:00Z")


def test_parameterized_types_are_kept_and_enforced(client, dataset):
    name = f"{dataset}.p_{uuid.uuid4().hex[:8]}"
    client.query(f"CREATE TABLE {name} (s STRING(3), b BYTES(2), n NUMERIC(4, 2), "
                 "bn BIGNUMERIC(38), big BIGNUMERIC(38, 22), plain STRING)").result()
    table = client.get_table(name)
    assert [(f.name, f.field_type, f.max_length, f.precision, f.scale)
            for f in table.schema] == [("s", "STRING", 3, None, None),
                                       ("b", "BYTES", 2, None, None),
                                       ("n", "NUMERIC", None, 4, 2),
                                       ("bn", "BIGNUMERIC", None, 38, None),
                                       ("big", "BIGNUMERIC", None, 38, 22),
                                       ("plain", "STRING", None, None, None)]
    client.query(f"INSERT INTO {name} (s, b, n) VALUES ('abc', b'xy', 12.34)").result()
    for values in ("('abcd', NULL, NULL)", "(NULL, b'xyz', NULL)", "(NULL, NULL, 123.4)"):
        with pytest.raises(exceptions.BadRequest):
            client.query(f"INSERT INTO {name} (s, b, n) VALUES {values}").result()
    assert client.insert_rows_json(name, [{"s": "toolong"}])  # refused per row
    copy = f"{client.project}.{name}_copy"  # the same schema through tables.insert
    client.create_table(bigquery.Table(copy, schema=table.schema))
    assert [f.max_length for f in client.get_table(copy).schema][:2] == [3, 2]
    assert client.insert_rows_json(copy, [{"s": "abcd"}])
    assert client.insert_rows_json(copy, [{"s": "abc"}]) == []
    with pytest.raises(exceptions.BadRequest, match="not supported"):
        client.query(f"CREATE TABLE {name}_wide (x BIGNUMERIC(50, 10))").result()


def test_parameter_values_are_echoed_as_strings_and_bignumerics_kept_exact(client):
    import decimal

    job_id = f"echo_{uuid.uuid4().hex}"
    config = bigquery.QueryJobConfig(query_parameters=[
        bigquery.ScalarQueryParameter("ts", "TIMESTAMP", 1.4810976e9)])
    with pytest.raises(exceptions.BadRequest):  # a number is not a TIMESTAMP's text
        client.query("SELECT TIMESTAMP_ADD(@ts, INTERVAL 1 HOUR)", job_id=job_id,
                     job_config=config).result()
    echoed = client.get_job(job_id)._properties["configuration"]["query"]["queryParameters"]
    assert echoed[0]["parameterValue"]["value"] == "1481097600.0"
    with pytest.raises(ValueError):  # the client cannot read it back as a TIMESTAMP
        _ = client.get_job(job_id).query_parameters
    wide = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter(
        "b", "BIGNUMERIC", decimal.Decimal("1" * 30 + ".5"))])
    assert list(client.query("SELECT @b", job_config=wide).result())[0][0] == \
        decimal.Decimal("1" * 30 + ".5")
    fits = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter(
        "b", "BIGNUMERIC", decimal.Decimal("12345678901234567890.123456789012345678"))])
    row = list(client.query("SELECT @b AS b", job_config=fits).result())[0]
    assert row["b"] == decimal.Decimal("12345678901234567890.123456789012345678")


def test_table_names_are_case_sensitive_unless_the_dataset_says_otherwise(client):
    sensitive = client.create_dataset(f"cs_{uuid.uuid4().hex[:8]}")
    insensitive = bigquery.Dataset(f"{client.project}.ci_{uuid.uuid4().hex[:8]}")
    insensitive.is_case_insensitive = True
    insensitive = client.create_dataset(insensitive)
    try:
        assert sensitive.is_case_insensitive is False and insensitive.is_case_insensitive
        for ds in (sensitive, insensitive):
            client.create_table(ds.table("lower_name"))
        assert client.get_table(insensitive.table("LOWER_Name")).table_id == "lower_name"
        with pytest.raises(exceptions.NotFound):
            client.get_table(sensitive.table("LOWER_Name"))
        with pytest.raises(exceptions.NotFound):
            client.delete_table(sensitive.table("Lower_name"))
        with pytest.raises(exceptions.MethodNotImplemented, match="differ only in case"):
            client.create_table(sensitive.table("Lower_Name"))
        with pytest.raises(exceptions.Conflict):
            client.create_table(insensitive.table("Lower_Name"))
    finally:
        for ds in (sensitive, insensitive):
            client.delete_dataset(ds, delete_contents=True)


def test_parquet_decimals_follow_decimal_target_types(client, table_id):
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    values = [decimal.Decimal("123.999999999999"), decimal.Decimal("1.5")]
    buffer = io.BytesIO()
    pq.write_table(pa.table({"d": pa.array(values, pa.decimal128(38, 12))}), buffer)

    def load(targets, dest):
        config = bigquery.LoadJobConfig(source_format="PARQUET", decimal_target_types=targets,
                                        write_disposition="WRITE_TRUNCATE")
        return client.load_table_from_file(io.BytesIO(buffer.getvalue()), dest,
                                           job_config=config).result()

    load(["NUMERIC", "BIGNUMERIC", "STRING"], table_id)  # NUMERIC cannot hold 12 digits
    assert client.get_table(table_id).schema[0].field_type == "BIGNUMERIC"
    assert sorted(r["d"] for r in client.list_rows(table_id)) == sorted(values)
    load(["STRING", "NUMERIC"], f"{table_id}_s")
    assert client.get_table(f"{table_id}_s").schema[0].field_type == "STRING"
    with pytest.raises(exceptions.BadRequest, match="out of valid NUMERIC range"):
        load(["NUMERIC"], f"{table_id}_n")
    with pytest.raises(exceptions.BadRequest, match="decimalTargetTypes"):
        load(["NUMERIC", "NUMERIC"], f"{table_id}_n")


def test_unnest_of_tuples_gives_their_fields_as_columns(client):
    rows = client.query_and_wait("SELECT * FROM UNNEST([(1, 2), (3, 4)])")
    assert [tuple(r.values()) for r in rows] == [(1, 2), (3, 4)]
    named = client.query_and_wait("SELECT * FROM UNNEST([STRUCT(1 AS a, 'x' AS b), (2, 'y')])")
    assert [dict(r.items()) for r in named] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


def test_a_scripts_temp_table_takes_dml_by_its_bare_name(client):
    rows = client.query_and_wait("""
        CREATE TEMP TABLE Example (x INT64, y STRING);
        INSERT INTO Example VALUES (5, 'foo'), (6, 'bar');
        UPDATE Example SET y = 'baz' WHERE x = 6;
        SELECT * FROM Example ORDER BY x""")
    assert [tuple(r.values()) for r in rows] == [(5, "foo"), (6, "baz")]


def test_insert_rows_parses_json_text_into_a_json_column(client, table_id):
    table = client.create_table(bigquery.Table(table_id, schema=[
        bigquery.SchemaField("doc", "JSON")]))
    value = {"tags": [1, 2], "owner": {"name": "ada"}}
    assert client.insert_rows(table, [(value,)]) == []  # the client sends json.dumps(value)
    assert [r.doc for r in client.list_rows(table)] == [value]
    assert [r.kind for r in client.query_and_wait(
        f"SELECT JSON_TYPE(doc.owner) AS kind FROM `{table_id}`")] == ["object"]


def test_json_type_names_as_bigquery(client):
    row = next(iter(client.query_and_wait(
        """SELECT JSON_TYPE(JSON '{"a": 1}') AS o, JSON_TYPE(JSON '[1]') AS a,
                  JSON_TYPE(JSON '"x"') AS s, JSON_TYPE(JSON '1.5') AS n,
                  JSON_TYPE(JSON '7') AS i, JSON_TYPE(JSON 'true') AS b,
                  JSON_TYPE(JSON 'null') AS z""")))
    assert dict(row.items()) == {"o": "object", "a": "array", "s": "string", "n": "number",
                                 "i": "number", "b": "boolean", "z": "null"}


def test_bytes_inside_records_are_base64_in_loads_and_insert_all(client, table_id):
    import base64

    schema = [bigquery.SchemaField("spells", "RECORD", mode="REPEATED", fields=[
        bigquery.SchemaField("name", "STRING"), bigquery.SchemaField("icon", "BYTES"),
        bigquery.SchemaField("power", "FLOAT")])]
    icon = bytes(range(256))
    row = {"spells": [{"name": "Fire", "icon": base64.b64encode(icon).decode(), "power": 2.5},
                      {"name": "Mist", "icon": None, "power": None}]}
    table = client.create_table(bigquery.Table(table_id, schema=schema))
    assert client.insert_rows_json(table, [row]) == []
    _load_json(client, table_id, [row], schema)  # appends the same row through a load job
    for got in client.list_rows(table):
        assert [s["icon"] for s in got.spells] == [icon, None]
        assert got.spells[0]["power"] == 2.5
    errors = client.insert_rows_json(table, [{"spells": [{"icon": "not base64!"}]}])
    assert errors and "TransactionContext" not in errors[0]["errors"][0]["message"]


def test_child_jobs_inside_a_transaction_carry_its_id(client, table_id):
    client.create_table(bigquery.Table(table_id, schema=[bigquery.SchemaField("n", "INT64")]))
    job = client.query(f"""
        SELECT 1;
        BEGIN TRANSACTION;
        INSERT INTO `{table_id}` VALUES (1), (2);
        COMMIT TRANSACTION;
        SELECT 2""")
    job.result()
    assert job.transaction_info is None  # the script itself is in no transaction
    ids = {}
    for child in client.list_jobs(parent_job=job):
        info = child.transaction_info
        ids.setdefault(child.statement_type, []).append(info.transaction_id if info else None)
    assert ids["SELECT"] == [None, None]
    assert ids["BEGIN_TRANSACTION"][0]
    assert ids["BEGIN_TRANSACTION"] == ids["INSERT"] == ids["COMMIT_TRANSACTION"]


def test_sessions_keep_their_temp_tables_for_later_jobs(client):
    first = client.query("CREATE TEMP TABLE numbers (id INT64) AS "
                         "SELECT * FROM UNNEST([1, 2, 3]) AS id",
                         job_config=bigquery.QueryJobConfig(create_session=True))
    first.result()
    session_id = first.session_info.session_id
    assert session_id
    joined = bigquery.QueryJobConfig(connection_properties=[
        bigquery.ConnectionProperty("session_id", session_id)])
    for api_method in ("QUERY", "INSERT"):  # jobs.query and jobs.insert
        job = client.query("SELECT COUNT(*) AS n FROM numbers", job_config=joined,
                           api_method=api_method)
        assert [r.n for r in job.result()] == [3]
        assert job.session_info.session_id == session_id
    rows = client.query("INSERT INTO numbers VALUES (4); SELECT SUM(id) AS s FROM _SESSION.numbers",
                        job_config=joined).result()
    assert [r.s for r in rows] == [10]
    with pytest.raises(exceptions.BadRequest, match="qualified"):  # outside the session
        client.query_and_wait("SELECT COUNT(*) FROM numbers")
    assert not any(d.dataset_id.startswith("_session") for d in client.list_datasets())
    with pytest.raises(exceptions.BadRequest, match="does not exist"):
        client.query("SELECT 1", job_config=bigquery.QueryJobConfig(connection_properties=[
            bigquery.ConnectionProperty("session_id", "nosuchsession")])).result()
    with pytest.raises(exceptions.BadRequest, match="not supported by the local BigQuery"):
        client.query("SELECT 1", job_config=bigquery.QueryJobConfig(connection_properties=[
            bigquery.ConnectionProperty("time_zone", "Europe/Paris")])).result()


def test_create_table_with_a_column_list_as_a_query(client, table_id):
    client.query_and_wait(f"CREATE TABLE `{table_id}` (id INT64, label STRING) AS "
                          "SELECT 1, 'one' UNION ALL SELECT 2, 'two'")
    table = client.get_table(table_id)
    assert [(f.name, f.field_type) for f in table.schema] == [("id", "INTEGER"),
                                                              ("label", "STRING")]
    assert sorted(r.id for r in client.list_rows(table)) == [1, 2]


def _avro_file(records: list[dict], schema: dict) -> io.BytesIO:
    import fastavro

    data = io.BytesIO()
    fastavro.writer(data, fastavro.parse_schema(schema), records)
    data.seek(0)
    return data


AVRO_SCHEMA = {"type": "record", "name": "Ride", "fields": [
    {"name": "rider", "type": "string"},
    {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}]},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["E", "PEDAL"]}},
    {"name": "tags", "type": {"type": "map", "values": "long"}},
    {"name": "stops", "type": {"type": "array", "items": "string"}}]}


def test_avro_loads_take_the_files_schema_and_logical_types_on_request(client, table_id):
    import datetime

    records = [{"rider": "ada", "day": datetime.date(2024, 5, 1), "kind": "E",
                "tags": {"km": 12}, "stops": ["a", "b"]},
               {"rider": "bob", "day": None, "kind": "PEDAL", "tags": {}, "stops": []}]
    for logical, day_type in ((True, "DATE"), (False, "INTEGER")):
        config = bigquery.LoadJobConfig(source_format="AVRO", use_avro_logical_types=logical,
                                        write_disposition="WRITE_TRUNCATE")
        client.load_table_from_file(_avro_file(records, AVRO_SCHEMA), table_id,
                                    job_config=config).result()
        schema = {f.name: (f.field_type, f.mode) for f in client.get_table(table_id).schema}
        assert schema["rider"] == ("STRING", "REQUIRED")  # no null in its union
        assert schema["day"] == (day_type, "NULLABLE")
        assert schema["kind"][0] == "STRING" and schema["tags"] == ("RECORD", "REPEATED")
    rows = {r.rider: r for r in client.list_rows(table_id)}
    assert rows["ada"].day == (datetime.date(2024, 5, 1) - datetime.date(1970, 1, 1)).days
    assert rows["ada"].tags == [{"key": "km", "value": 12}] and rows["bob"].stops == []
    with pytest.raises(exceptions.BadRequest, match="Avro"):
        client.load_table_from_file(io.BytesIO(b"not avro at all"), table_id,
                                    job_config=bigquery.LoadJobConfig(
                                        source_format="AVRO")).result()


def test_avro_extracts_need_logical_types_and_read_back(client, table_id, local_env):
    import fastavro
    from google.cloud import storage

    client.query_and_wait(f"CREATE TABLE `{table_id}` AS SELECT 'ada' AS rider, "
                          "TIMESTAMP '2024-05-01 10:00:00+00' AS at, NUMERIC '1.50' AS fare")
    uri = f"gs://{local_env.bucket}/avro-extract/{uuid.uuid4().hex[:8]}.avro"
    with pytest.raises(exceptions.BadRequest, match="useAvroLogicalTypes"):
        client.extract_table(table_id, uri, job_config=bigquery.ExtractJobConfig(
            destination_format="AVRO")).result()
    client.extract_table(table_id, uri, job_config=bigquery.ExtractJobConfig(
        destination_format="AVRO", use_avro_logical_types=True)).result()
    blob = storage.Client().bucket(local_env.bucket).blob(uri.split("/", 3)[3])
    (row,) = list(fastavro.reader(io.BytesIO(blob.download_as_bytes())))
    assert row["rider"] == "ada" and str(row["fare"]) == "1.500000000"
    assert row["at"].isoformat() == "2024-05-01T10:00:00+00:00"


def test_initcap_of_an_array_element_reads_that_element(client):
    row = next(iter(client.query_and_wait(
        "SELECT INITCAP(['seattle', 'wa'][OFFSET(0)]) AS a, "
        "INITCAP(SPLIT('portland, or', ',')[SAFE_OFFSET(1)]) AS b, "
        "INITCAP(['x'][SAFE_OFFSET(3)]) AS c")))
    assert (row.a, row.b, row.c) == ("Seattle", " Or", None)


@pytest.mark.parametrize("field_type, value", [(["null", "string", "long"], "x"),
                                                ("null", None)])
def test_avro_types_bigquery_cannot_load_are_a_400(client, table_id, field_type, value):
    schema = {"type": "record", "name": "R", "fields": [{"name": "x", "type": field_type}]}
    with pytest.raises(exceptions.BadRequest, match="not supported by the local BigQuery"):
        client.load_table_from_file(_avro_file([{"x": value}], schema), table_id,
                                    job_config=bigquery.LoadJobConfig(
                                        source_format="AVRO")).result()


def test_intervals_beyond_arrow_nanoseconds_read_back_exactly(client, table_id):
    from google.cloud import bigquery_storage

    schema = [bigquery.SchemaField("i", "INTEGER"), bigquery.SchemaField("d", "INTERVAL")]
    _load_json(client, table_id, [{"i": 0, "d": "P-10000Y0M-3660000DT-87840000H0M0S"},
                                  {"i": 1, "d": "P1D"}], schema)
    extreme = relativedelta(years=-10000, days=-3660000, hours=-87840000)
    job = client.query(f"SELECT i, d FROM `{table_id}` ORDER BY i")
    assert [r["d"] for r in job.result()] == [extreme, relativedelta(days=1)]
    assert {r["i"]: r["d"] for r in client.list_rows(table_id)}[0] == extreme
    # a later query reads the first one's anonymous results as INTERVALs again
    d = job.destination
    again = client.query(f"SELECT d + INTERVAL 1 DAY AS e FROM "
                         f"`{d.project}.{d.dataset_id}.{d.table_id}` WHERE i = 0").result()
    assert [r["e"] for r in again] == [extreme + relativedelta(days=1)]
    reader = bigquery_storage.BigQueryReadClient()
    small = client.query(f"SELECT d FROM `{table_id}` WHERE i = 1").result()
    assert small.to_arrow(bqstorage_client=reader).column("d").to_pylist()[0].days == 1
    with pytest.raises(exceptions.BadRequest, match="106751 days"):
        client.list_rows(table_id).to_arrow(bqstorage_client=reader)
