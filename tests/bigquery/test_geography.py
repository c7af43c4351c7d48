"""GEOGRAPHY through the real client: DDL, loads, insertAll, ST_* functions, BigQuery's
canonical WKT, both read paths (REST and the Storage Read API) and bad input as 400s."""

from __future__ import annotations

import io
import json
import math
import uuid

import pandas
import pytest
from google.api_core import exceptions
from google.cloud import bigquery

shapely_wkt = pytest.importorskip("shapely.wkt")


@pytest.fixture
def table_id(client, dataset):
    return f"{client.project}.{dataset}.g_{uuid.uuid4().hex[:8]}"


def _query(client, sql, **config):
    job_config = bigquery.QueryJobConfig(**config) if config else None
    return [dict(r) for r in client.query(sql, job_config=job_config).result()]


def test_ddl_insert_and_output_are_canonical_wkt(client, table_id):
    client.query(f"CREATE TABLE `{table_id}` (name STRING, g GEOGRAPHY, "
                 "gs ARRAY<GEOGRAPHY>)").result()
    assert [f.field_type for f in client.get_table(table_id).schema] == \
        ["STRING", "GEOGRAPHY", "GEOGRAPHY"]
    client.query(f"""INSERT INTO `{table_id}` VALUES
        ('pole', ST_GEOGFROMTEXT('POINT(-135.0000 90.0000)'), [ST_GEOGPOINT(370, 5)]),
        ('cw', ST_GEOGFROMTEXT('polygon((0 0, 0 2, 2 2, 2 0, 0 0))'), []),
        ('none', NULL, [])""").result()
    rows = {r["name"]: r for r in _query(client, f"SELECT * FROM `{table_id}`")}
    assert rows["pole"]["g"] == "POINT(-135 90)"  # no trailing zeros
    assert rows["pole"]["gs"] == ["POINT(10 5)"]  # ST_GEOGPOINT: longitude modulo 360
    # a clockwise shell prints counterclockwise, from its last vertex (BigQuery's docs)
    assert rows["cw"]["g"] == "POLYGON((2 0, 2 2, 0 2, 0 0, 2 0))"
    assert rows["none"]["g"] is None
    listed = {r["name"]: r["g"] for r in client.list_rows(table_id)}
    assert listed == {"pole": "POINT(-135 90)", "cw": "POLYGON((2 0, 2 2, 0 2, 0 0, 2 0))",
                      "none": None}
    project, dataset, table = table_id.split(".")
    types = _query(client, f"SELECT column_name, data_type FROM `{project}.{dataset}`."
                           f"INFORMATION_SCHEMA.COLUMNS WHERE table_name = '{table}' "
                           "ORDER BY ordinal_position")
    assert [r["data_type"] for r in types] == ["STRING", "GEOGRAPHY", "ARRAY<GEOGRAPHY>"]


def test_scripts_alter_and_cast_keep_the_type(client, table_id):
    client.query(f"CREATE TABLE `{table_id}` (i INT64)").result()
    client.query(f"ALTER TABLE `{table_id}` ADD COLUMN g GEOGRAPHY").result()
    rows = _query(client, f"""
        DECLARE here GEOGRAPHY DEFAULT ST_GEOGPOINT(3, 4);
        INSERT INTO `{table_id}` VALUES (1, CAST(here AS GEOGRAPHY)), (2, CAST(NULL AS GEOGRAPHY));
        SELECT i, g, ST_Y(g) AS y FROM `{table_id}` ORDER BY i""")
    assert rows == [{"i": 1, "g": "POINT(3 4)", "y": 4.0}, {"i": 2, "g": None, "y": None}]
    assert client.get_table(table_id).schema[1].field_type == "GEOGRAPHY"


def test_st_functions(client):
    row = _query(client, """
        SELECT ST_ASTEXT(ST_GEOGPOINT(1, 2)) AS text,
               ST_X(ST_GEOGPOINT(1.5, 2)) AS x, ST_Y(ST_GEOGPOINT(1.5, 2)) AS y,
               ST_DISTANCE(ST_GEOGPOINT(0, 0), ST_GEOGPOINT(1, 0)) AS d,
               ST_DWITHIN(ST_GEOGPOINT(0, 0), ST_GEOGPOINT(0, 0.001), 112) AS near,
               ST_DWITHIN(ST_GEOGPOINT(0, 0), ST_GEOGPOINT(0, 0.001), 110) AS far,
               ST_LENGTH(ST_GEOGFROMTEXT('LINESTRING(0 0, 0 1, 1 1)')) AS len,
               ST_AREA(ST_GEOGFROMTEXT('POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))')) AS area,
               ST_CONTAINS(ST_GEOGFROMTEXT('POLYGON((0 0, 0 2, 2 2, 2 0, 0 0))'),
                           ST_GEOGPOINT(1, 1)) AS contains,
               ST_WITHIN(ST_GEOGPOINT(3, 3),
                         ST_GEOGFROMTEXT('POLYGON((0 0, 0 2, 2 2, 2 0, 0 0))')) AS within,
               ST_INTERSECTS(ST_GEOGFROMTEXT('LINESTRING(0 0, 2 2)'),
                             ST_GEOGFROMTEXT('LINESTRING(0 2, 2 0)')) AS crosses,
               ST_DISTANCE(ST_GEOGPOINT(0, 1), ST_GEOGFROMTEXT('LINESTRING(-1 0, 1 0)')) AS dl,
               ST_EQUALS(ST_GEOGFROMTEXT('POLYGON((0 0, 0 2, 2 2, 2 0, 0 0))'),
                         ST_GEOGFROMTEXT('POLYGON((2 2, 2 0, 0 0, 0 2, 2 2))')) AS same,
               ST_COVERS(ST_GEOGFROMTEXT('POLYGON((1 1, 20 1, 10 20, 1 1))'),
                         ST_GEOGPOINT(1, 1)) AS covers_edge,
               ST_CONTAINS(ST_GEOGFROMTEXT('POLYGON((1 1, 20 1, 10 20, 1 1))'),
                           ST_GEOGPOINT(1, 1)) AS contains_edge,
               ST_DISJOINT(ST_GEOGPOINT(0, 0), ST_GEOGPOINT(0, 1)) AS disjoint,
               ST_ASGEOJSON(ST_GEOGPOINT(-122.35, 47.62)) AS geojson,
               ST_ASTEXT(ST_GEOGFROMGEOJSON(
                   '{"type": "Polygon", "coordinates": [[[2, 0], [2, 2], [1, 2], [0, 2],
                     [0, 0], [2, 0]]]}')) AS from_geojson,
               ST_ASTEXT(ST_GEOGFROMWKB(ST_ASBINARY(ST_GEOGPOINT(2, 4)))) AS wkb,
               ST_ASTEXT(ST_GEOGFROMWKB('010100000000000000000000400000000000001040')) AS hex,
               ST_ASTEXT(ST_GEOGFROMTEXT('MULTIPOINT(1 1)')) AS one_point,
               ST_ASTEXT(ST_GEOGFROMTEXT('POINT EMPTY')) AS empty,
               ST_DISTANCE(ST_GEOGPOINT(0, 0), NULL) AS null_distance,
               ST_ASTEXT(ST_GEOGFROMTEXT('GEOMETRYCOLLECTION(POINT(1 1), POINT(2 2), POINT(1 1))'))
                 AS points,
               ST_AREA(ST_GEOGFROMTEXT('POLYGON((172 53, -130 55, -141 70, 172 53))')) AS east,
               ST_AREA(ST_GEOGFROMTEXT('POLYGON((172 53, -141 70, -130 55, 172 53))')) AS west,
               ST_DISTANCE(ST_GEOGPOINT(-0.1, 51.5),
                           ST_GEOGFROMTEXT('LINESTRING(151 -33, 151.2 -33.9)')) AS sydney,
               ST_INTERSECTS(ST_GEOGPOINT(-0.1, 51.5),
                             ST_GEOGFROMTEXT('POLYGON((151 -33, 152 -33, 151.2 -34, 151 -33))'))
                 AS far_apart""")[0]
    degree = 6371008.8 * math.pi / 180  # a degree of a great circle on BigQuery's sphere
    assert row["text"] == "POINT(1 2)"
    assert (row["x"], row["y"]) == (1.5, 2.0)
    assert row["d"] == pytest.approx(degree, rel=1e-12)
    assert (row["near"], row["far"]) == (True, False)
    assert row["len"] == pytest.approx(degree * (1 + math.cos(math.radians(1))), rel=1e-4)
    assert row["area"] == pytest.approx(1.2364e10, rel=1e-3)  # a 1 x 1 degree cell at 0, 0
    assert (row["contains"], row["within"], row["crosses"]) == (True, False, True)
    assert row["dl"] == pytest.approx(degree, rel=1e-12)
    # the docs' ST_COVERS example: a vertex is covered, not contained
    assert (row["same"], row["covers_edge"], row["contains_edge"], row["disjoint"]) == \
        (True, True, False, True)
    assert row["geojson"] == '{ "type": "Point", "coordinates": [-122.35, 47.62] }'
    assert row["from_geojson"] == "POLYGON((2 0, 2 2, 1 2, 0 2, 0 0, 2 0))"
    assert row["wkb"] == row["hex"] == "POINT(2 4)"
    assert row["one_point"] == "POINT(1 1)"
    assert row["empty"] == "GEOMETRYCOLLECTION EMPTY"
    assert row["null_distance"] is None
    assert row["points"] == "MULTIPOINT(1 1, 2 2)"  # the simplest type, each point once
    # across the antimeridian: the smaller region whichever way the ring turns
    assert row["east"] == pytest.approx(row["west"]) and 1e12 < row["east"] < 1e13
    assert 1.6e7 < row["sydney"] < 1.8e7 and row["far_apart"] is False  # London to Sydney


@pytest.mark.parametrize("sql, message", [
    ("SELECT ST_GEOGFROMTEXT('POINT(0 100)')", "Latitude"),
    ("SELECT ST_GEOGFROMTEXT('POINT(1)')", "Invalid WKT"),
    ("SELECT ST_GEOGFROMTEXT('POLYGON((0 -1, 2 1, 2 -1, 0 1, 0 -1))')", "Self-intersection"),
    ("SELECT ST_GEOGFROMGEOJSON('{\"type\": \"Feature\"}')", "GeoJSON"),
    ("SELECT ST_X(ST_GEOGFROMTEXT('LINESTRING(0 0, 1 1)'))", "point"),
    ("SELECT ST_BUFFER(ST_GEOGPOINT(0, 0), 10)", "LAB_BACKEND=gcp"),
    ("SELECT ST_DISTANCE(ST_GEOGPOINT(0, 0), ST_GEOGPOINT(1, 1), TRUE)", "use_spheroid"),
    # BigQuery casts nothing else to GEOGRAPHY (and struct-shaped text is no way around)
    ("SELECT CAST('{bq$geography: junk}' AS GEOGRAPHY)", "Invalid cast"),
    ("SELECT ST_GEOGPOINT(1, 2) = ST_GEOGPOINT(1, 2)", "GEOGRAPHY values cannot be compared"),
])
def test_bad_geography_is_a_400(client, sql, message):
    with pytest.raises(exceptions.BadRequest, match=message):
        client.query(sql).result()
    assert _query(client, "SELECT 1 AS one") == [{"one": 1}]  # still serving


def test_json_load_takes_wkt_geojson_and_hex_wkb_and_refuses_bad_values(client, table_id):
    schema = [bigquery.SchemaField("i", "INTEGER"), bigquery.SchemaField("g", "GEOGRAPHY")]
    config = bigquery.LoadJobConfig(schema=schema, source_format="NEWLINE_DELIMITED_JSON")
    rows = [{"i": 0, "g": "POINT(-122.0838511 37.3860517)"},
            {"i": 1, "g": {"type": "Point", "coordinates": [1.0, 2.0]}},
            {"i": 2, "g": "0101000000000000000000f03f000000000000f03f"},
            {"i": 3, "g": "LINESTRING(0 0, 1.50 1)"}, {"i": 4, "g": None},
            # the GEOGRAPHY values of the client's scalars_extreme.jsonl
            {"i": 5, "g": "POINT(-135.0000 90.0000)"}, {"i": 6, "g": "POINT(45.0000 -90.0000)"},
            {"i": 7, "g": "POINT(-180.0000 0.0000)"}]
    data = io.BytesIO("\n".join(json.dumps(r) for r in rows).encode())
    client.load_table_from_file(data, table_id, job_config=config).result()
    assert {r["i"]: r["g"] for r in client.list_rows(table_id)} == {
        0: "POINT(-122.0838511 37.3860517)", 1: "POINT(1 2)", 2: "POINT(1 1)",
        3: "LINESTRING(0 0, 1.5 1)", 4: None, 5: "POINT(-135 90)", 6: "POINT(45 -90)",
        7: "POINT(-180 0)"}
    bad = io.BytesIO(json.dumps({"i": 5, "g": "POINT(1 2"}).encode())
    with pytest.raises(exceptions.BadRequest, match="WKT"):
        client.load_table_from_file(bad, table_id, job_config=config).result()
    assert client.get_table(table_id).num_rows == 8  # nothing half-written


def test_csv_load_reads_geography_text(client, table_id):
    schema = [bigquery.SchemaField("g", "GEOGRAPHY")]
    config = bigquery.LoadJobConfig(schema=schema, source_format="CSV")
    data = io.BytesIO(b'"POLYGON((0 0, 0 1, 1 1, 0 0))"\n')
    client.load_table_from_file(data, table_id, job_config=config).result()
    assert [r["g"] for r in client.list_rows(table_id)] == ["POLYGON((1 1, 0 1, 0 0, 1 1))"]


def test_dataframe_loads_of_shapely_and_wkb_values(client, table_id):
    shapes = pandas.DataFrame({"name": ["foo", "bar"],
                               "geo": [None, shapely_wkt.loads("Point(1.0 1.0)")]})
    client.load_table_from_dataframe(shapes, table_id).result()
    assert [f.field_type for f in client.get_table(table_id).schema] == \
        ["STRING", "GEOGRAPHY"]
    from shapely import wkb

    raw = pandas.DataFrame({"name": ["baz"],
                            "geo": [wkb.dumps(shapely_wkt.loads("LINESTRING(0 0, 1 1)"))]})
    client.load_table_from_dataframe(raw, table_id).result()  # into the table's GEOGRAPHY
    assert sorted(map(list, client.list_rows(table_id))) == [
        ["bar", "POINT(1 1)"], ["baz", "LINESTRING(0 0, 1 1)"], ["foo", None]]


def test_insert_rows_normalise_and_report_bad_values(client, table_id):
    schema = [bigquery.SchemaField("i", "INTEGER"), bigquery.SchemaField("g", "GEOGRAPHY")]
    client.create_table(bigquery.Table(table_id, schema=schema))
    assert client.insert_rows_json(table_id, [{"i": 1, "g": "POINT(3.000 4.0)"}]) == []
    errors = client.insert_rows_json(table_id, [{"i": 2, "g": "POINT(3 400)"}])
    assert errors and "Latitude" in errors[0]["errors"][0]["message"]
    assert [(r["i"], r["g"]) for r in client.list_rows(table_id)] == [(1, "POINT(3 4)")]


def test_query_parameter_of_type_geography(client):
    param = bigquery.ScalarQueryParameter("g", "GEOGRAPHY", "POINT(1.0 2.0)")
    row = _query(client, "SELECT @g AS g, ST_X(@g) AS x", query_parameters=[param])[0]
    assert row == {"g": "POINT(1 2)", "x": 1.0}


def test_rest_and_storage_read_give_the_same_geography(client, table_id):
    from unittest import mock

    from google.cloud import bigquery_storage

    geopandas = pytest.importorskip("geopandas")
    client.query(f"CREATE TABLE `{table_id}` (name STRING, geog GEOGRAPHY, dt DATETIME)"
                 ).result()
    client.query(f"""INSERT INTO `{table_id}` (name, geog) VALUES
        ('foo', ST_GEOGFROMTEXT('point(0 0)')),
        ('bar', ST_GEOGFROMTEXT('polygon((0 0, 1 0, 1 1, 0 0))')), ('baz', NULL)""").result()
    reader = bigquery_storage.BigQueryReadClient()

    def read(method, through_storage: bool, **options):
        rows = client.list_rows(table_id)
        with mock.patch.object(reader, "create_read_session",
                               wraps=reader.create_read_session) as spy:
            if through_storage:
                out = getattr(rows, method)(bqstorage_client=reader, **options)
            else:
                out = getattr(rows, method)(create_bqstorage_client=False, **options)
        assert spy.called == through_storage
        return out

    expected = ["POINT(0 0)", "POLYGON((0 0, 1 0, 1 1, 0 0))", None]
    for through_storage in (True, False):
        table = read("to_arrow", through_storage)
        assert table.schema.field("geog").metadata == {
            b"ARROW:extension:name": b"google:sqlType:geography",
            b"ARROW:extension:metadata": b'{"encoding": "WKT"}'}
        assert table.schema.field("dt").metadata == {
            b"ARROW:extension:name": b"google:sqlType:datetime"}
        assert table.column("geog").to_pylist() == expected
        frame = read("to_geodataframe", through_storage)
        assert isinstance(frame, geopandas.GeoDataFrame)
        assert frame["geog"][1] == shapely_wkt.loads(expected[1])
        assert frame.crs.srs == "EPSG:4326"
        objects = read("to_dataframe", through_storage, geography_as_object=True)
        assert objects["geog"][0] == shapely_wkt.loads("POINT(0 0)")
        assert pandas.isna(objects["geog"][2])
    # a row restriction is BigQuery SQL: the ST_* functions work there too
    from google.cloud.bigquery_storage import types

    project, dataset, table = table_id.split(".")
    session = reader.create_read_session(
        parent=f"projects/{project}", max_stream_count=1, read_session=types.ReadSession(
            table=f"projects/{project}/datasets/{dataset}/tables/{table}",
            data_format=types.DataFormat.ARROW, read_options=types.ReadSession.TableReadOptions(
                selected_fields=["name"],
                row_restriction="ST_INTERSECTS(geog, ST_GEOGFROMTEXT("
                                "'POLYGON((0.5 0.1, 0.9 0.1, 0.9 0.4, 0.5 0.1))'))")))
    picked = reader.read_rows(session.streams[0].name).to_arrow(session)
    assert picked.column("name").to_pylist() == ["bar"]


def test_extract_writes_geography_as_wkt(client, table_id, local_env):
    from google.cloud import storage

    client.query(f"CREATE TABLE `{table_id}` AS SELECT 1 AS i, "
                 "ST_GEOGPOINT(1.50, 2) AS g").result()
    bucket = storage.Client().create_bucket(f"geo-{uuid.uuid4().hex[:8]}")
    client.extract_table(table_id, f"gs://{bucket.name}/out.json", job_config=(
        bigquery.ExtractJobConfig(destination_format="NEWLINE_DELIMITED_JSON"))).result()
    text = bucket.blob("out.json").download_as_text()
    assert json.loads(text.splitlines()[0]) == {"i": 1, "g": "POINT(1.5 2)"}


def test_parquet_loads_take_wkb_and_text_and_refuse_other_types(client, table_id):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from shapely import wkb

    schema = [bigquery.SchemaField("b", "GEOGRAPHY"), bigquery.SchemaField("t", "GEOGRAPHY")]
    config = bigquery.LoadJobConfig(schema=schema, source_format="PARQUET")

    def load(table: pa.Table):
        data = io.BytesIO()
        pq.write_table(table, data)
        data.seek(0)
        return client.load_table_from_file(data, table_id, job_config=config).result()

    load(pa.table({"b": pa.array([wkb.dumps(shapely_wkt.loads("POINT(1 2)")), None]),
                   "t": pa.array(["LINESTRING(0 0, 2.0 2.0)", None])}))
    assert [list(r) for r in client.list_rows(table_id)] == [
        ["POINT(1 2)", "LINESTRING(0 0, 2 2)"], [None, None]]
    with pytest.raises(exceptions.BadRequest, match="GEOGRAPHY"):
        load(pa.table({"b": pa.array([1, 2]), "t": pa.array(["POINT(0 0)", None])}))
    with pytest.raises(exceptions.BadRequest, match="WKB"):
        load(pa.table({"b": pa.array([b"\x01junk"]), "t": pa.array(["POINT(0 0)"])}))
    assert client.get_table(table_id).num_rows == 2
