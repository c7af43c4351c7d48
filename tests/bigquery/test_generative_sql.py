"""BigQuery's generative SQL through the front door: connections through the real
google-cloud-bigquery-connection client (gRPC, routed by the proxy), remote models over the
local Vertex AI (CREATE MODEL ... REMOTE WITH CONNECTION), ML.GENERATE_EMBEDDING and
ML.GENERATE_TEXT through the real google-cloud-bigquery client."""

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions


def run(client, sql: str):
    """A statement; a service error fails in seconds instead of minutes of retries."""
    from google.cloud import bigquery

    fast = bigquery.DEFAULT_RETRY.with_deadline(5)
    return client.query(sql, retry=fast, job_retry=None).result(retry=fast)


@pytest.fixture(scope="module")
def connections(local_env):
    from google.cloud import bigquery_connection_v1 as bc

    return bc.ConnectionServiceClient()


@pytest.fixture(scope="module")
def connection(connections, local_env):
    """A CLOUD_RESOURCE connection in US, as `bq mk --connection --location=US
    --connection_type=CLOUD_RESOURCE` makes it."""
    from google.cloud import bigquery_connection_v1 as bc

    conn_id = f"llm_{uuid.uuid4().hex[:8]}"
    made = connections.create_connection(
        parent=f"projects/{local_env.project}/locations/us", connection_id=conn_id,
        connection=bc.Connection(friendly_name="Vertex AI",
                                 cloud_resource=bc.CloudResourceProperties()))
    yield made
    connections.delete_connection(name=made.name)


@pytest.fixture(scope="module")
def bq(local_env):
    from google.cloud import bigquery

    client = bigquery.Client()
    dataset = client.create_dataset(f"{local_env.project}.gen_{uuid.uuid4().hex[:8]}")
    client.gen_dataset = dataset.dataset_id
    yield client
    client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def test_connections_create_get_list_delete(connections, connection, local_env):
    from google.cloud import bigquery_connection_v1 as bc

    assert bc.ConnectionServiceClient.DEFAULT_ENDPOINT == "bigqueryconnection.googleapis.com"
    assert connection.cloud_resource.service_account_id.endswith(
        "@gcp-sa-bigquery-condel.iam.gserviceaccount.com")
    assert connection.creation_time > 0
    got = connections.get_connection(name=connection.name)
    assert got.friendly_name == "Vertex AI" and got.name == connection.name
    parent = f"projects/{local_env.project}/locations/us"
    names = [c.name for c in connections.list_connections(
        request={"parent": parent, "page_size": 10})]
    assert connection.name in names
    with pytest.raises(exceptions.AlreadyExists):
        connections.create_connection(parent=parent, connection_id=connection.name.split("/")[-1],
                                      connection=bc.Connection(
                                          cloud_resource=bc.CloudResourceProperties()))
    with pytest.raises(exceptions.NotFound):
        connections.get_connection(name=f"{parent}/connections/nope")
    with pytest.raises(exceptions.MethodNotImplemented):
        connections.create_connection(parent=parent, connection_id="sql", connection=bc.Connection(
            cloud_sql=bc.CloudSqlProperties(instance_id="p:r:i")))


def embedding_model(bq, connection, name="embedder"):
    conn = connection.name.split("/")
    ref = f"`{bq.project}.{bq.gen_dataset}.{name}`"
    run(bq, f"CREATE OR REPLACE MODEL {ref} REMOTE WITH CONNECTION "
            f"`{conn[1]}.{conn[3]}.{conn[5]}` OPTIONS (ENDPOINT = 'text-embedding-005')")
    return ref


def test_remote_model_resource_names_endpoint_and_connection(bq, connection):
    ref = embedding_model(bq, connection)
    model = bq.get_model(ref.strip("`"))
    info = model._properties["remoteModelInfo"]
    assert info["connection"] == connection.name
    assert info["endpoint"].endswith("/publishers/google/models/text-embedding-005")
    assert info["endpoint"].startswith("https://us-central1-aiplatform.googleapis.com/")


def test_remote_model_refusals(bq, connection, local_env):
    d = bq.gen_dataset
    with pytest.raises(exceptions.NotFound, match="Not found: Connection"):
        run(bq, f"CREATE MODEL {d}.m REMOTE WITH CONNECTION `{local_env.project}.us.missing` "
                "OPTIONS (ENDPOINT = 'gemini-2.5-flash')")
    conn = connection.name.split("/")
    with pytest.raises(exceptions.BadRequest, match="Invalid ENDPOINT 'gpt-4'"):
        run(bq, f"CREATE MODEL {d}.m REMOTE WITH CONNECTION `{conn[1]}.{conn[3]}.{conn[5]}` "
                "OPTIONS (ENDPOINT = 'gpt-4')")
    from google.cloud import bigquery

    eu = bigquery.Dataset(f"{bq.project}.{d}_eu")
    eu.location = "EU"
    bq.create_dataset(eu)
    try:
        with pytest.raises(exceptions.BadRequest, match="must be in its dataset's location"):
            bq.query(f"CREATE MODEL {d}_eu.m REMOTE WITH CONNECTION "
                     f"`{conn[1]}.{conn[3]}.{conn[5]}` OPTIONS (ENDPOINT = 'gemini-2.5-flash')",
                     location="EU").result()
    finally:
        bq.delete_dataset(eu, delete_contents=True)
    with pytest.raises(exceptions.BadRequest, match="ENDPOINT must be set"):
        run(bq, f"CREATE MODEL {d}.m REMOTE WITH CONNECTION DEFAULT")
    with pytest.raises(exceptions.NotFound):
        bq.get_model(f"{d}.m")


def test_generate_embedding_with_documented_columns(bq, connection):
    ref = embedding_model(bq, connection)
    rows = list(run(bq, f"""
        SELECT * FROM ML.GENERATE_EMBEDDING(MODEL {ref},
          (SELECT 'BigQuery is a data warehouse' AS content, 1 AS id UNION ALL
           SELECT 'Penguins live in Antarctica', 2 UNION ALL SELECT '', 3),
          STRUCT(TRUE AS flatten_json_output, 'RETRIEVAL_DOCUMENT' AS task_type,
                 256 AS output_dimensionality))
        ORDER BY id"""))
    assert list(rows[0].keys()) == ["ml_generate_embedding_result",
                                    "ml_generate_embedding_statistics",
                                    "ml_generate_embedding_status", "content", "id"]
    assert len(rows[0]["ml_generate_embedding_result"]) == 256
    assert rows[0]["ml_generate_embedding_status"] == ""
    assert rows[0]["ml_generate_embedding_statistics"]["token_count"] > 0
    assert rows[2]["ml_generate_embedding_result"] == []  # NULL array: BigQuery's [] on read
    assert "empty" in rows[2]["ml_generate_embedding_status"]
    # similar texts are near: the same sentence embeds identically
    again = list(run(bq, f"""SELECT ml_generate_embedding_result AS e FROM
        ML.GENERATE_EMBEDDING(MODEL {ref}, (SELECT 'BigQuery is a data warehouse' AS content),
        STRUCT('RETRIEVAL_DOCUMENT' AS task_type, 256 AS output_dimensionality))"""))
    assert again[0]["e"] == pytest.approx(rows[0]["ml_generate_embedding_result"], abs=1e-6)


def test_generate_embedding_refusals(bq, connection):
    ref = embedding_model(bq, connection)
    with pytest.raises(exceptions.BadRequest, match="column named content"):
        run(bq, f"SELECT * FROM ML.GENERATE_EMBEDDING(MODEL {ref}, (SELECT 'x' AS text))")
    with pytest.raises(exceptions.BadRequest, match="Invalid task_type"):
        run(bq, f"SELECT * FROM ML.GENERATE_EMBEDDING(MODEL {ref}, (SELECT 'x' AS content), "
                "STRUCT('SEARCH' AS task_type))")
    with pytest.raises(exceptions.BadRequest, match="needs a remote model over a Gemini"):
        run(bq, f"SELECT * FROM ML.GENERATE_TEXT(MODEL {ref}, (SELECT 'x' AS prompt))")


def test_generate_text_flattened_and_json(bq, connection):
    d = bq.gen_dataset
    run(bq, f"CREATE OR REPLACE MODEL {d}.gemini REMOTE WITH CONNECTION DEFAULT "
            "OPTIONS (ENDPOINT = 'gemini-2.5-flash')")
    rows = list(run(bq, f"""
        SELECT * FROM ML.GENERATE_TEXT(MODEL {d}.gemini,
          (SELECT 'The capital of France is' AS prompt, 1 AS id UNION ALL SELECT NULL, 2),
          STRUCT(4 AS max_output_tokens, 0.0 AS temperature, TRUE AS flatten_json_output))
        ORDER BY id"""))
    assert list(rows[0].keys()) == ["ml_generate_text_llm_result",
                                    "ml_generate_text_rai_result", "ml_generate_text_status",
                                    "prompt", "id"]
    assert rows[0]["ml_generate_text_llm_result"] and rows[0]["ml_generate_text_status"] == ""
    assert rows[1]["ml_generate_text_llm_result"] is None
    assert rows[1]["ml_generate_text_status"]  # the row failed, not the query
    raw = list(run(bq, f"""SELECT ml_generate_text_result AS r, ml_generate_text_status AS s
        FROM ML.GENERATE_TEXT(MODEL {d}.gemini, (SELECT 'Say hi' AS prompt),
        STRUCT(2 AS max_output_tokens, 0.0 AS temperature))"""))
    assert raw[0]["r"]["candidates"][0]["content"]["parts"][0]["text"] is not None
    assert raw[0]["r"]["usageMetadata"]["candidatesTokenCount"] <= 2
    with pytest.raises(exceptions.BadRequest, match="LAB_BACKEND=gcp"):
        run(bq, f"SELECT * FROM ML.GENERATE_TEXT(MODEL {d}.gemini, (SELECT 'x' AS prompt), "
                "STRUCT(TRUE AS ground_with_google_search))")
    with pytest.raises(exceptions.BadRequest, match=r"top_k must be in the range \[1, 40\]"):
        run(bq, f"SELECT * FROM ML.GENERATE_TEXT(MODEL {d}.gemini, (SELECT 'x' AS prompt), "
                "STRUCT(100 AS top_k))")


def test_rag_in_sql_embed_store_search_and_generate(bq, connection):
    """Google's pattern: embed a table into a new one, search it with an embedded question,
    and ground a generation on what the search found."""
    d = bq.gen_dataset
    ref = embedding_model(bq, connection, "rag_embedder")
    run(bq, f"""CREATE OR REPLACE TABLE {d}.chunks AS
        SELECT * FROM ML.GENERATE_EMBEDDING(MODEL {ref}, (
          SELECT 'Penguins are flightless birds of the southern hemisphere' AS content
          UNION ALL SELECT 'BigQuery stores tables in columnar form'
          UNION ALL SELECT 'The Eiffel Tower is in Paris'))""")
    table = bq.get_table(f"{d}.chunks")
    assert table.num_rows == 3
    assert [f.name for f in table.schema][:3] == ["ml_generate_embedding_result",
                                                  "ml_generate_embedding_statistics",
                                                  "ml_generate_embedding_status"]
    hits = list(run(bq, f"""SELECT query.query, base.content, distance FROM VECTOR_SEARCH(
        TABLE {d}.chunks, 'ml_generate_embedding_result',
        (SELECT ml_generate_embedding_result, content AS query FROM ML.GENERATE_EMBEDDING(
           MODEL {ref}, (SELECT 'Which birds cannot fly?' AS content))),
        top_k => 1, distance_type => 'COSINE')"""))
    assert [h["content"] for h in hits] == [
        "Penguins are flightless birds of the southern hemisphere"]
    run(bq, f"CREATE OR REPLACE MODEL {d}.rag_gemini REMOTE WITH CONNECTION DEFAULT "
            "OPTIONS (ENDPOINT = 'gemini-2.5-flash')")
    answer = list(run(bq, f"""SELECT ml_generate_text_llm_result AS a, ml_generate_text_status AS s
        FROM ML.GENERATE_TEXT(MODEL {d}.rag_gemini, (
          SELECT CONCAT('Context: ', base.content, ' Question: which birds cannot fly?')
                 AS prompt
          FROM VECTOR_SEARCH(TABLE {d}.chunks, 'ml_generate_embedding_result',
            (SELECT ml_generate_embedding_result FROM ML.GENERATE_EMBEDDING(MODEL {ref},
               (SELECT 'Which birds cannot fly?' AS content))), top_k => 1)),
        STRUCT(3 AS max_output_tokens, 0.0 AS temperature, TRUE AS flatten_json_output))"""))
    assert answer[0]["s"] == "" and answer[0]["a"]


def test_ai_functions_not_built_fail_loudly(bq):
    with pytest.raises(exceptions.BadRequest, match=r"AI.GENERATE_TEXT .*LAB_BACKEND=gcp"):
        run(bq, f"SELECT * FROM AI.GENERATE_TEXT(MODEL {bq.gen_dataset}.gemini, "
                "(SELECT 'hi' AS prompt))")
    with pytest.raises(exceptions.BadRequest, match=r"AI.IF .*LAB_BACKEND=gcp"):
        run(bq, "SELECT AI.IF('Is the sky blue?') AS yes")


def test_ai_generate_embedding_columns(bq, connection):
    ref = embedding_model(bq, connection, "ai_embedder")
    rows = list(run(bq, f"""
        SELECT * FROM AI.GENERATE_EMBEDDING(MODEL {ref},
          (SELECT 'Penguins live in Antarctica' AS content, 1 AS id UNION ALL SELECT NULL, 2),
          STRUCT('RETRIEVAL_DOCUMENT' AS task_type, 64 AS output_dimensionality))
        ORDER BY id"""))
    assert list(rows[0].keys()) == ["embedding", "statistics", "status", "content", "id"]
    assert len(rows[0]["embedding"]) == 64 and rows[0]["status"] == ""
    assert rows[0]["statistics"]["token_count"] > 0
    assert rows[1]["embedding"] == [] and "NULL or empty" in rows[1]["status"]
    same = list(run(bq, f"""SELECT ml_generate_embedding_result AS e FROM ML.GENERATE_EMBEDDING(
        MODEL {ref}, (SELECT 'Penguins live in Antarctica' AS content),
        STRUCT('RETRIEVAL_DOCUMENT' AS task_type, 64 AS output_dimensionality))"""))
    assert same[0]["e"] == pytest.approx(rows[0]["embedding"], abs=1e-6)
    with pytest.raises(exceptions.BadRequest, match="Unknown argument .*AI.GENERATE_EMBEDDING"):
        run(bq, f"SELECT * FROM AI.GENERATE_EMBEDDING(MODEL {ref}, (SELECT 'x' AS content), "
                "STRUCT(TRUE AS flatten_json_output))")
    with pytest.raises(exceptions.BadRequest, match="column named content"):
        run(bq, f"SELECT * FROM AI.GENERATE_EMBEDDING(MODEL {ref}, (SELECT 'x' AS text))")


def test_ai_generate_table_follows_the_output_schema(bq, connection):
    d = bq.gen_dataset
    run(bq, f"CREATE OR REPLACE MODEL {d}.gemini_table REMOTE WITH CONNECTION DEFAULT "
            "OPTIONS (ENDPOINT = 'gemini-2.5-flash')")
    rows = list(run(bq, f"""
        SELECT * FROM AI.GENERATE_TABLE(MODEL {d}.gemini_table,
          (SELECT 'Paris is the capital of France.' AS prompt, 1 AS id
           UNION ALL SELECT '', 2),
          STRUCT('city STRING, is_capital BOOL, tags ARRAY<STRING>' AS output_schema,
                 0.0 AS temperature, 48 AS max_output_tokens))
        ORDER BY id"""))
    assert list(rows[0].keys()) == ["city", "is_capital", "tags", "full_response", "status",
                                    "prompt", "id"]
    assert rows[0]["status"] == "", rows[0]["status"]
    assert isinstance(rows[0]["city"], str) and isinstance(rows[0]["is_capital"], bool)
    assert isinstance(rows[0]["tags"], list)
    assert rows[0]["full_response"]["candidates"][0]["content"]["parts"][0]["text"]
    assert rows[1]["city"] is None and rows[1]["status"]
    with pytest.raises(exceptions.BadRequest, match="needs STRUCT.*output_schema"):
        run(bq, f"SELECT * FROM AI.GENERATE_TABLE(MODEL {d}.gemini_table, "
                "(SELECT 'x' AS prompt))")
    with pytest.raises(exceptions.BadRequest, match="type DATE is not supported"):
        run(bq, f"SELECT * FROM AI.GENERATE_TABLE(MODEL {d}.gemini_table, "
                "(SELECT 'x' AS prompt), STRUCT('day DATE' AS output_schema))")


def test_ai_generate_scalar_result_and_structured_output(bq, connection):
    params = "JSON '{\"generation_config\": {\"max_output_tokens\": 3, \"temperature\": 0}}'"
    rows = list(run(bq, f"""
        SELECT city, AI.GENERATE(('The capital of ', city, ' is'),
                                 endpoint => 'gemini-2.5-flash',
                                 model_params => {params}) AS g
        FROM UNNEST(['France', CAST(NULL AS STRING)]) AS city ORDER BY city NULLS LAST"""))
    assert set(rows[0]["g"]) == {"result", "full_response", "status"}
    assert rows[0]["g"]["status"] == "" and rows[0]["g"]["result"]
    usage = rows[0]["g"]["full_response"]["usageMetadata"]
    assert usage["candidatesTokenCount"] <= 3
    assert rows[1]["g"]["result"] is None and rows[1]["g"]["status"]  # the row, not the query
    conn = connection.name.split("/")
    typed = list(run(bq, f"""SELECT AI.GENERATE('Is Paris in France? Answer yes or no.',
        connection_id => '{conn[1]}.{conn[3]}.{conn[5]}', output_schema => 'answer BOOL',
        model_params => {params}).answer AS answer"""))
    assert isinstance(typed[0]["answer"], bool)


def test_ai_generate_refusals(bq, local_env):
    with pytest.raises(exceptions.BadRequest, match="no argument named temperature"):
        run(bq, "SELECT AI.GENERATE('hi', temperature => 0.5) AS g")
    with pytest.raises(exceptions.BadRequest, match="is an embedding model"):
        run(bq, "SELECT AI.GENERATE('hi', endpoint => 'text-embedding-005') AS g")
    with pytest.raises(exceptions.BadRequest, match="Invalid ENDPOINT 'gpt-4'"):
        run(bq, "SELECT AI.GENERATE('hi', endpoint => 'gpt-4') AS g")
    with pytest.raises(exceptions.NotFound, match="Not found: Connection"):
        run(bq, f"SELECT AI.GENERATE('hi', connection_id => '{local_env.project}.us.nope') AS g")
    with pytest.raises(exceptions.BadRequest, match="model_params must be a JSON"):
        run(bq, "SELECT AI.GENERATE('hi', model_params => 'temperature=0') AS g")
    with pytest.raises(exceptions.BadRequest, match="cannot set contents"):
        run(bq, "SELECT AI.GENERATE('hi', model_params => JSON '{\"contents\": []}') AS g")
    with pytest.raises(exceptions.BadRequest, match="Invalid output_schema"):
        run(bq, "SELECT AI.GENERATE('hi', output_schema => 'answer') AS g")
    with pytest.raises(exceptions.BadRequest, match="Provisioned Throughput"):
        run(bq, "SELECT AI.GENERATE('hi', request_type => 'DEDICATED') AS g")
    with pytest.raises(exceptions.BadRequest, match="Invalid request_type 'FAST'"):
        run(bq, "SELECT AI.GENERATE('hi', request_type => 'FAST') AS g")


def test_a_deleted_connection_leaves_its_model_unusable(bq, connections, local_env):
    from google.cloud import bigquery_connection_v1 as bc

    made = connections.create_connection(
        parent=f"projects/{local_env.project}/locations/us", connection_id="short_lived",
        connection=bc.Connection(cloud_resource=bc.CloudResourceProperties()))
    ref = embedding_model(bq, made, "orphan")
    connections.delete_connection(name=made.name)
    with pytest.raises(exceptions.NotFound, match="Not found: Connection"):
        run(bq, f"SELECT * FROM ML.GENERATE_EMBEDDING(MODEL {ref}, (SELECT 'x' AS content))")
