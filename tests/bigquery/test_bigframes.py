"""BigQuery DataFrames (bigframes) against the local BigQuery, and the SQL it relies on:
a query's anonymous results table read back in SQL, FOR SYSTEM_TIME AS OF the present,
CURRENT_TIMESTAMP() under its own name, RAND() in a window's ORDER BY (the default strict
ordering numbers rows with ROW_NUMBER() OVER (ORDER BY hashes..., RAND())).

bigframes needs no switch of its own: its bigquery.Client honours BIGQUERY_EMULATOR_HOST
and its BigQueryReadClient goes through the proxy to the local Storage Read API."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from google.api_core import exceptions
from google.cloud import bigquery_storage


@pytest.fixture(scope="module")
def table(client, dataset):
    client.query(f"CREATE TABLE {dataset}.points AS SELECT i AS id, MOD(i, 3) AS g, "
                 "i * 1.5 AS v FROM UNNEST(GENERATE_ARRAY(1, 600)) AS i").result()
    return f"{client.project}.{dataset}.points"


def test_sql_reads_a_querys_anonymous_results_table(client, table):
    job = client.query(f"SELECT id, v FROM `{table}` WHERE id <= 4")
    job.result()
    dest = job.destination
    rows = client.query_and_wait(f"SELECT SUM(v) AS total FROM `{dest.project}."
                                 f"{dest.dataset_id}.{dest.table_id}`")
    assert [r.total for r in rows] == [1.5 + 3 + 4.5 + 6]
    with pytest.raises(exceptions.NotFound, match="Dataset"):
        client.query_and_wait(f"SELECT 1 FROM `{dest.dataset_id}.anon0000`")


def test_for_system_time_as_of_the_present_and_before_the_last_change(client, table):
    now = datetime.datetime.now(datetime.UTC).isoformat()
    rows = client.query_and_wait(f"SELECT COUNT(*) AS n FROM `{table}` "
                                 f"FOR SYSTEM_TIME AS OF '{now}'")
    assert [r.n for r in rows] == [600]
    with pytest.raises(exceptions.BadRequest, match="time travel"):
        client.query_and_wait(f"SELECT COUNT(*) FROM `{table}` FOR SYSTEM_TIME AS OF "
                              "TIMESTAMP '2001-01-01 00:00:00 UTC'")
    with pytest.raises(exceptions.BadRequest, match="computed timestamp"):
        client.query_and_wait(f"SELECT COUNT(*) FROM `{table}` FOR SYSTEM_TIME AS OF "
                              "TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR)")


def test_current_timestamp_under_its_own_name(client):
    before = datetime.datetime.now(datetime.UTC)
    rows = list(client.query_and_wait("SELECT CURRENT_TIMESTAMP() AS `current_timestamp`"))
    assert abs((rows[0].current_timestamp - before).total_seconds()) < 60


def test_rand_in_a_window_order_shuffles(client, table):
    rows = list(client.query_and_wait(
        f"SELECT *, ROW_NUMBER() OVER (ORDER BY RAND()) AS rn FROM `{table}`"))
    assert list(rows[0].keys()) == ["id", "g", "v", "rn"]  # no helper column shows
    assert sorted(r.rn for r in rows) == list(range(1, 601))
    order = [r.id for r in sorted(rows, key=lambda r: r.rn)]
    assert order != sorted(order)  # 600 rows in id order by chance: 1 in 600!


def test_bigframes_default_ordering(client, table):
    import bigframes

    session = bigframes.Session(bigframes.BigQueryOptions(project=client.project,
                                                          location="US"))
    try:
        df = session.read_gbq(table)
        assert len(df.head(5).to_pandas()) == 5
        assert df["v"].sum() == sum(i * 1.5 for i in range(1, 601))
    finally:
        session.close()


def test_bigframes_partial_ordering_reads_filters_groups_and_returns_pandas(client, table):
    import bigframes
    import bigframes.pandas as bpd

    context = bigframes.BigQueryOptions(project=client.project, location="US",
                                        ordering_mode="partial")
    session = bigframes.Session(context)
    with mock.patch.object(bigquery_storage.BigQueryReadClient, "create_read_session",
                           autospec=True,
                           side_effect=bigquery_storage.BigQueryReadClient.create_read_session
                           ) as create:
        try:
            df = session.read_gbq(table)
            assert df.shape == (600, 3)
            first = df.sort_values("id").head(3).to_pandas()
            assert first["id"].tolist() == [1, 2, 3]
            means = df.groupby("g")["v"].mean().to_pandas()
            assert means.to_dict() == pytest.approx(
                {g: sum(i * 1.5 for i in range(1, 601) if i % 3 == g) / 200 for g in range(3)})
            picked = session.read_gbq(f"SELECT id, v FROM `{table}` WHERE id < 10")
            doubled = (picked["v"] * 2).to_pandas()
            assert sorted(doubled.tolist()) == [i * 3.0 for i in range(1, 10)]
            some = df[df["g"] == 1].to_pandas()
            assert len(some) == 200 and set(some["g"]) == {1}
            whole = df.to_pandas()  # a table scan: the Read API, at the session's snapshot
            assert sorted(whole["id"].tolist()) == list(range(1, 601))
        finally:
            session.close()
    assert isinstance(bpd.DataFrame, type)
    assert create.call_count >= 1  # results came back through the Storage Read API


def test_a_session_closes_cleanly_and_routines_lists_are_empty(client, dataset, table):
    """bigframes lists its session dataset's routines when it closes; none exist locally
    (routines.insert runs with LAB_BACKEND=gcp), so the list is empty, not a 501."""
    import warnings

    import bigframes

    assert list(client.list_routines(dataset)) == []
    with pytest.raises(exceptions.NotFound, match="Dataset"):
        list(client.list_routines("no_such_dataset"))
    session = bigframes.Session(bigframes.BigQueryOptions(project=client.project,
                                                          location="US"))
    assert len(session.read_gbq(table).to_pandas()) == 600
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session.close()
    assert [str(w.message) for w in caught if "clean up" in str(w.message)] == []
