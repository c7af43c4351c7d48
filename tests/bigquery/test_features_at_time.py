"""ML.FEATURES_AT_TIME and ML.ENTITY_FEATURES_AT_TIME through the BigQuery client, on the
reference pages' kind of feature table: entity_id, features, feature_timestamp."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from google.api_core import exceptions
from google.cloud import bigquery


@pytest.fixture(scope="module")
def features(local_env):
    client = bigquery.Client()
    dataset = f"pit_{uuid.uuid4().hex[:8]}"
    client.create_dataset(dataset)
    client.query(f"""
        CREATE TABLE `{dataset}.features` AS
        SELECT 'id1' AS entity_id, 1.0 AS f_1, 10 AS f_2,
               TIMESTAMP '2022-01-01 00:00:00+00' AS feature_timestamp
        UNION ALL SELECT 'id1', NULL, 11, TIMESTAMP '2022-02-01 00:00:00+00'
        UNION ALL SELECT 'id1', 3.0, NULL, TIMESTAMP '2022-03-01 00:00:00+00'
        UNION ALL SELECT 'id2', 5.0, 50, TIMESTAMP '2022-02-15 00:00:00+00'""").result()
    client.query(f"""
        CREATE TABLE `{dataset}.entity_times` AS
        SELECT 'id1' AS entity_id, TIMESTAMP '2022-02-10 00:00:00+00' AS time
        UNION ALL SELECT 'id1', TIMESTAMP '2022-12-31 00:00:00+00'
        UNION ALL SELECT 'id2', TIMESTAMP '2022-01-05 00:00:00+00'""").result()
    yield dataset
    client.delete_dataset(dataset, delete_contents=True)


def _rows(sql: str) -> list[dict]:
    return [dict(r) for r in bigquery.Client().query(sql).result()]


def test_features_at_time_cutoff_and_defaults(features):
    rows = _rows(f"""SELECT * FROM ML.FEATURES_AT_TIME(TABLE `{features}.features`,
                     time => '2022-02-20 00:00:00+00') ORDER BY entity_id""")
    cutoff = datetime(2022, 2, 20, tzinfo=UTC)
    assert rows == [
        {"entity_id": "id1", "f_1": None, "f_2": 11, "feature_timestamp": cutoff},
        {"entity_id": "id2", "f_1": 5.0, "f_2": 50, "feature_timestamp": cutoff}]
    latest = _rows(f"SELECT entity_id, f_1, f_2 FROM ML.FEATURES_AT_TIME("
                   f"TABLE `{features}.features`) ORDER BY entity_id")  # time: now
    assert latest[0] == {"entity_id": "id1", "f_1": 3.0, "f_2": None}


def test_features_at_time_num_rows_and_ignore_nulls(features):
    rows = _rows(f"""SELECT entity_id, f_1, f_2 FROM ML.FEATURES_AT_TIME(
                       (SELECT * FROM `{features}.features` WHERE entity_id = 'id1'),
                       time => TIMESTAMP '2022-03-05 00:00:00+00', num_rows => 2,
                       ignore_feature_nulls => TRUE) ORDER BY f_1""")
    # the two latest rows, NULLs replaced by the value of the row before them in time
    assert rows == [{"entity_id": "id1", "f_1": 1.0, "f_2": 11},
                    {"entity_id": "id1", "f_1": 3.0, "f_2": 11}]


def test_entity_features_at_time(features):
    rows = _rows(f"""SELECT entity_id, f_1, f_2, feature_timestamp FROM
                     ML.ENTITY_FEATURES_AT_TIME(TABLE `{features}.features`,
                                                TABLE `{features}.entity_times`,
                                                ignore_feature_nulls => TRUE)
                     ORDER BY entity_id, feature_timestamp""")
    # id2's only row (2022-02-15) is after its time (2022-01-05): no row for it
    assert rows == [
        {"entity_id": "id1", "f_1": 1.0, "f_2": 11,
         "feature_timestamp": datetime(2022, 2, 10, tzinfo=UTC)},
        {"entity_id": "id1", "f_1": 3.0, "f_2": 11,
         "feature_timestamp": datetime(2022, 12, 31, tzinfo=UTC)}]


def test_point_in_time_feeds_a_table_and_a_model(features):
    client = bigquery.Client()
    client.query(f"""CREATE TABLE `{features}.training` AS
                     SELECT * EXCEPT (feature_timestamp, entity_id) FROM ML.FEATURES_AT_TIME(
                       TABLE `{features}.features`, time => '2022-12-31 00:00:00+00',
                       num_rows => 3)""").result()
    assert client.get_table(f"{features}.training").num_rows == 4


def test_point_in_time_bad_input(features):
    client = bigquery.Client()
    bad = {
        f"ML.FEATURES_AT_TIME(TABLE `{features}.features`, num_rows => 0)": "num_rows",
        f"ML.FEATURES_AT_TIME(TABLE `{features}.features`, when => '2022-01-01')": "when",
        f"ML.FEATURES_AT_TIME(TABLE `{features}.entity_times`)": "feature_timestamp",
        f"ML.FEATURES_AT_TIME(TABLE `{features}.features`, ignore_feature_nulls => 1)":
            "ignore_feature_nulls",
        f"ML.ENTITY_FEATURES_AT_TIME(TABLE `{features}.features`, TABLE `{features}.features`)":
            "time",
    }
    for call, word in bad.items():
        with pytest.raises(exceptions.BadRequest, match=word):
            client.query(f"SELECT * FROM {call}").result()
    with pytest.raises(exceptions.NotFound):
        client.query(f"SELECT * FROM ML.FEATURES_AT_TIME(TABLE `{features}.nope`)").result()


def test_point_in_time_training_data_for_a_model(features):
    """The reference page's example: retrain on features as they were at a cutoff, then
    predict from features at a cutoff."""
    client = bigquery.Client()
    client.query(f"""CREATE OR REPLACE MODEL `{features}.pit_model`
                     OPTIONS (model_type = 'linear_reg', input_label_cols = ['f_2']) AS
                     SELECT * EXCEPT (feature_timestamp, entity_id)
                     FROM ML.FEATURES_AT_TIME(TABLE `{features}.features`,
                                              time => '2022-12-31 00:00:00+00', num_rows => 3,
                                              ignore_feature_nulls => TRUE)""").result()
    rows = _rows(f"""SELECT * FROM ML.PREDICT(MODEL `{features}.pit_model`, (
                       SELECT * EXCEPT (feature_timestamp, entity_id)
                       FROM ML.FEATURES_AT_TIME(TABLE `{features}.features`,
                                                time => '2022-02-20 00:00:00+00',
                                                ignore_feature_nulls => TRUE)))""")
    assert len(rows) == 2 and all(isinstance(r["predicted_f_2"], float) for r in rows)
