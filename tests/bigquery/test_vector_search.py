"""BigQuery vector search through the real google-cloud-bigquery client: ML.DISTANCE,
VECTOR_SEARCH (table and query bases, top_k, the three distance types, options), CREATE /
DROP VECTOR INDEX (IVF and TREE_AH options validated; the index used for approximate
search once the table holds 10 MB, exact search below), and the RAG pattern with
ML.GENERATE_EMBEDDING inside VECTOR_SEARCH."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from google.api_core import exceptions

DIM = 64
ROWS = 21000  # 21000 x 64 FLOAT64 = 10.75 MB: above the 10 MB an index needs


def run(client, sql: str):
    from google.cloud import bigquery

    fast = bigquery.DEFAULT_RETRY.with_deadline(5)
    return list(client.query(sql, retry=fast, job_retry=None).result(retry=fast))


def vector_sql(n: int, dim: int = DIM) -> str:
    """n deterministic pseudo-random vectors made by SQL alone."""
    parts = ", ".join(f"SIN(id * {0.7 + 0.37 * k:.3f} + {k})" for k in range(dim))
    return f"SELECT id, [{parts}] AS embedding FROM UNNEST(GENERATE_ARRAY(1, {n})) AS id"


@pytest.fixture(scope="module")
def bq(local_env):
    from google.cloud import bigquery

    client = bigquery.Client()
    dataset = client.create_dataset(f"{local_env.project}.vec_{uuid.uuid4().hex[:8]}")
    d = dataset.dataset_id
    run(client, f"""CREATE TABLE {d}.docs AS
        SELECT 1 AS id, 'cat' AS title, [1.0, 0.0, 0.0] AS embedding UNION ALL
        SELECT 2, 'dog', [0.9, 0.1, 0.0] UNION ALL SELECT 3, 'car', [0.0, 0.0, 1.0] UNION ALL
        SELECT 4, 'big', [10.0, 0.0, 0.0] UNION ALL SELECT 5, 'none', NULL""")
    run(client, f"CREATE TABLE {d}.big AS {vector_sql(ROWS)}")
    run(client, f"CREATE TABLE {d}.small AS {vector_sql(2000)}")
    client.vec_dataset = d
    yield client
    client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def test_ml_distance(bq):
    row = run(bq, "SELECT ML.DISTANCE([1.0, 2.0], [4.0, 6.0]) AS e, "
                  "ML.DISTANCE([1.0, 2.0], [4.0, 6.0], 'MANHATTAN') AS m, "
                  "ML.DISTANCE([1.0, 0.0], [0.0, 1.0], 'COSINE') AS c, "
                  "ML.DISTANCE(NULL, [1.0]) AS n")[0]
    assert (row["e"], row["m"], row["c"], row["n"]) == (5.0, 7.0, 1.0, None)
    with pytest.raises(exceptions.BadRequest, match="same length"):
        run(bq, "SELECT ML.DISTANCE([1.0], [1.0, 2.0])")
    with pytest.raises(exceptions.BadRequest, match="Invalid distance type 'HAMMING'"):
        run(bq, "SELECT ML.DISTANCE([1.0], [1.0], 'HAMMING')")


def test_vector_search_columns_and_distance_types(bq):
    d = bq.vec_dataset
    rows = run(bq, f"""SELECT query.q, base.id, base.title, distance
        FROM VECTOR_SEARCH(TABLE {d}.docs, 'embedding',
             (SELECT 'near cat' AS q, [1.0, 0.05, 0.0] AS embedding), top_k => 2)
        ORDER BY distance""")
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["distance"] == pytest.approx(0.05)
    cosine = run(bq, f"""SELECT base.id, distance FROM VECTOR_SEARCH(TABLE {d}.docs,
        'embedding', (SELECT [2.0, 0.0, 0.0] AS v), 'v', top_k => 2, distance_type => 'COSINE')
        ORDER BY distance, base.id""")
    assert [r["id"] for r in cosine] == [1, 4]          # same direction: distance 0
    assert cosine[0]["distance"] == pytest.approx(0.0)
    dot = run(bq, f"""SELECT base.id, distance FROM VECTOR_SEARCH(TABLE {d}.docs, 'embedding',
        (SELECT [1.0, 0.0, 0.0] AS embedding), top_k => 1, distance_type => 'DOT_PRODUCT')""")
    assert (dot[0]["id"], dot[0]["distance"]) == (4, -10.0)  # the negative dot product
    schema = {f.name: f.field_type for f in bq.query(
        f"SELECT * FROM VECTOR_SEARCH(TABLE {d}.docs, 'embedding', "
        "(SELECT [1.0, 0.0, 0.0] AS embedding))").result().schema}
    assert schema == {"query": "RECORD", "base": "RECORD", "distance": "FLOAT"}


def test_vector_search_query_base_and_refusals(bq):
    d = bq.vec_dataset
    rows = run(bq, f"""SELECT base.title FROM VECTOR_SEARCH(
        (SELECT * FROM {d}.docs WHERE title != 'cat'), 'embedding',
        (SELECT [1.0, 0.0, 0.0] AS embedding), top_k => 1)""")
    assert [r["title"] for r in rows] == ["dog"]
    with pytest.raises(exceptions.BadRequest, match="same dimension"):
        run(bq, f"SELECT * FROM VECTOR_SEARCH(TABLE {d}.docs, 'embedding', "
                "(SELECT [1.0, 0.0] AS embedding))")
    with pytest.raises(exceptions.BadRequest, match="Invalid distance_type 'MANHATTAN'"):
        run(bq, f"SELECT * FROM VECTOR_SEARCH(TABLE {d}.docs, 'embedding', "
                "(SELECT [1.0, 0.0, 0.0] AS embedding), distance_type => 'MANHATTAN')")
    with pytest.raises(exceptions.BadRequest, match="top_k must be a positive"):
        run(bq, f"SELECT * FROM VECTOR_SEARCH(TABLE {d}.docs, 'embedding', "
                "(SELECT [1.0, 0.0, 0.0] AS embedding), top_k => 0)")
    with pytest.raises(exceptions.BadRequest, match="needs a vector index"):
        run(bq, f"SELECT * FROM VECTOR_SEARCH(TABLE {d}.docs, 'embedding', "
                "(SELECT [1.0, 0.0, 0.0] AS embedding), "
                "options => '{\"fraction_lists_to_search\": 0.1}')")
    empty = run(bq, f"SELECT * FROM VECTOR_SEARCH((SELECT * FROM {d}.docs WHERE FALSE), "
                    "'embedding', (SELECT [1.0, 0.0, 0.0] AS embedding))")
    assert empty == []


def test_create_vector_index_options_are_validated(bq):
    d = bq.vec_dataset
    bad = [("index_type = 'HNSW'", "index_type must be 'IVF' or 'TREE_AH'"),
           ("index_type = 'IVF', ivf_options = '{\"num_lists\": 9000}'", "num_lists"),
           ("index_type = 'IVF', tree_ah_options = '{}'", "tree_ah_options can only"),
           ("index_type = 'TREE_AH', tree_ah_options = '{\"leaf_node_embedding_count\": 10}'",
            "leaf_node_embedding_count"),
           ("index_type = 'TREE_AH', tree_ah_options = '{\"normalization_type\": \"L1\"}'",
            "normalization_type"),
           ("index_type = 'IVF', distance_type = 'MANHATTAN'", "Invalid distance_type")]
    for options, message in bad:
        with pytest.raises(exceptions.BadRequest, match=message):
            run(bq, f"CREATE VECTOR INDEX ix ON {d}.small(embedding) OPTIONS({options})")
    with pytest.raises(exceptions.BadRequest, match="must be ARRAY<FLOAT64>"):
        run(bq, f"CREATE VECTOR INDEX ix ON {d}.docs(title) OPTIONS(index_type = 'IVF')")


def recall(approx: list, exact: list) -> float:
    return len(set(approx) & set(exact)) / len(exact)


def neighbours(bq, table: str, options: str, queries: int = 20, stats: list | None = None):
    """{query id: its 10 base ids}; `stats` gets the job's vectorSearchStatistics."""
    job = bq.query(f"""SELECT query.id AS q, base.id AS b FROM VECTOR_SEARCH(TABLE {table},
        'embedding', ({vector_sql(queries)}), top_k => 10, options => '{options}')""")
    out: dict[int, list[int]] = {}
    for r in job.result():
        out.setdefault(r["q"], []).append(r["b"])
    if stats is not None:
        bq_job = bq.get_job(job.job_id, location=job.location)  # the stored job resource
        stats.append(bq_job._properties["statistics"]["query"]["vectorSearchStatistics"])
    return out


def test_ivf_index_is_used_on_a_large_table_and_not_below_10_mb(bq):
    d = bq.vec_dataset
    job = bq.query(f"CREATE VECTOR INDEX big_ix ON {d}.big(embedding) "
                   "OPTIONS(index_type = 'IVF', distance_type = 'EUCLIDEAN', "
                   "ivf_options = '{\"num_lists\": 50}')")
    job.result()
    assert job.statement_type == "CREATE_VECTOR_INDEX"
    with pytest.raises(exceptions.Conflict):
        run(bq, f"CREATE VECTOR INDEX other ON {d}.big(embedding) OPTIONS(index_type = 'IVF')")
    stats: list = []
    exact = neighbours(bq, f"{d}.big", '{"use_brute_force": true}', stats=stats)
    one_list = neighbours(bq, f"{d}.big", '{"fraction_lists_to_search": 0.02}', stats=stats)
    assert stats[0]["indexUsageMode"] == "UNUSED"
    assert stats[0]["indexUnusedReasons"][0]["code"] == "INDEX_SUPPRESSED_BY_FUNCTION_OPTION"
    assert stats[1] == {"indexUsageMode": "FULLY_USED"}
    every = neighbours(bq, f"{d}.big", '{"fraction_lists_to_search": 1.0}')
    low = np.mean([recall(one_list[q], exact[q]) for q in exact])
    assert low < 1.0          # one list of 50 misses neighbours: the index was searched
    assert all(sorted(every[q]) == sorted(exact[q]) for q in exact)
    # below 10 MB the index is not populated: the same tiny fraction searches exactly
    run(bq, f"CREATE VECTOR INDEX small_ix ON {d}.small(embedding) "
            "OPTIONS(index_type = 'TREE_AH', tree_ah_options = "
            "'{\"leaf_node_embedding_count\": 500, \"normalization_type\": \"L2\"}')")
    small_exact = neighbours(bq, f"{d}.small", '{"use_brute_force": true}')
    small_tiny = neighbours(bq, f"{d}.small", '{"fraction_lists_to_search": 0.01}',
                            stats=stats)
    assert small_tiny == small_exact
    assert stats[-1]["indexUnusedReasons"][0]["code"] == "BASE_TABLE_TOO_SMALL"
    assert stats[-1]["indexUnusedReasons"][0]["indexName"] == "small_ix"
    # replacing the table drops its index, as in BigQuery
    run(bq, f"CREATE OR REPLACE TABLE {d}.small AS {vector_sql(2000)}")
    neighbours(bq, f"{d}.small", '{}', stats=stats)
    assert stats[-1]["indexUnusedReasons"][0]["code"] == "INDEX_CONFIG_NOT_AVAILABLE"
    with pytest.raises(exceptions.NotFound):
        run(bq, f"DROP VECTOR INDEX small_ix ON {d}.small")
    run(bq, f"CREATE VECTOR INDEX small_ix ON {d}.small(embedding) OPTIONS(index_type = 'IVF')")
    run(bq, f"DROP VECTOR INDEX small_ix ON {d}.small")
    run(bq, f"DROP VECTOR INDEX IF EXISTS small_ix ON {d}.small")
