"""BigQuery locations through the real client: a dataset keeps the location it was made
in, and a job reads and writes one location only, as BigQuery answers
(labkit.bigquery.locations)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bq(local_env):
    from google.cloud import bigquery

    client = bigquery.Client()
    for name, location in (("loc_us", "US"), ("loc_eu", "EU"), ("loc_region", "us-central1")):
        client.create_dataset(bigquery.Dataset(f"{local_env.project}.{name}"), exists_ok=True) \
            if location == "US" else client.create_dataset(
                _dataset(local_env.project, name, location), exists_ok=True)
        client.query(f"CREATE OR REPLACE TABLE {name}.t AS SELECT 1 AS x").result()
    return client


def _dataset(project: str, name: str, location: str):
    from google.cloud import bigquery

    dataset = bigquery.Dataset(f"{project}.{name}")
    dataset.location = location
    return dataset


def test_a_dataset_keeps_its_location(bq, local_env):
    assert bq.get_dataset("loc_us").location == "US"
    assert bq.get_dataset("loc_eu").location == "EU"
    assert bq.get_dataset("loc_region").location == "us-central1"
    assert bq.get_table("loc_eu.t").location == "EU"
    listed = {d.dataset_id: d._properties["location"] for d in bq.list_datasets()}
    assert listed["loc_eu"] == "EU"
    schemata = bq.query("SELECT schema_name, location FROM "
                        "`region-us-central1`.INFORMATION_SCHEMA.SCHEMATA "
                        "WHERE schema_name = 'loc_region'").result()
    assert [tuple(r.values()) for r in schemata] == [("loc_region", "us-central1")]


def test_a_bad_location_is_refused(bq, local_env):
    from google.api_core import exceptions

    with pytest.raises(exceptions.BadRequest, match="Invalid dataset location: mars"):
        bq.create_dataset(_dataset(local_env.project, "loc_mars", "mars"))


def test_the_job_runs_where_its_data_is(bq):
    job = bq.query("SELECT x FROM loc_eu.t")
    assert [r.x for r in job.result()] == [1]
    assert job.location == "EU"
    assert bq.query("SELECT x FROM loc_region.t").location == "us-central1"


def test_one_query_cannot_read_two_locations(bq, local_env):
    from google.api_core import exceptions

    with pytest.raises(exceptions.NotFound) as caught:
        bq.query("SELECT a.x FROM loc_us.t a JOIN loc_eu.t b USING (x)").result()
    assert (f"Not found: Dataset {local_env.project}:loc_eu was not found in location US"
            in caught.value.message)


def test_a_multi_region_is_not_its_regions(bq, local_env):
    from google.api_core import exceptions

    with pytest.raises(exceptions.NotFound, match="was not found in location US"):
        bq.query("SELECT * FROM loc_us.t UNION ALL SELECT * FROM loc_region.t").result()


def test_a_job_located_elsewhere_does_not_see_the_dataset(bq, local_env):
    from google.api_core import exceptions

    with pytest.raises(exceptions.NotFound) as caught:
        bq.query("SELECT x FROM loc_us.t", location="EU").result()
    assert (f"Not found: Dataset {local_env.project}:loc_us was not found in location EU"
            in caught.value.message)
    assert [r.x for r in bq.query("SELECT x FROM loc_eu.t", location="eu").result()] == [1]


def test_writes_stay_in_the_job_location(bq, local_env):
    from google.api_core import exceptions
    from google.cloud import bigquery

    with pytest.raises(exceptions.NotFound, match="loc_us was not found in location EU"):
        bq.query("INSERT INTO loc_eu.t SELECT x FROM loc_us.t").result()  # the target first
    config = bigquery.QueryJobConfig(destination=f"{local_env.project}.loc_eu.copy")
    with pytest.raises(exceptions.NotFound, match="loc_eu was not found in location US"):
        bq.query("SELECT x FROM loc_us.t", job_config=config).result()
    with pytest.raises(exceptions.NotFound):
        bq.get_table("loc_eu.copy")


def test_a_job_is_found_in_its_own_location_only(bq, local_env):
    from google.api_core import exceptions

    job = bq.query("SELECT x FROM loc_eu.t")
    job.result()
    assert bq.get_job(job.job_id, location="EU").state == "DONE"
    assert bq.get_job(job.job_id).location == "EU"  # no location asked: found by id
    with pytest.raises(exceptions.NotFound) as caught:
        bq.get_job(job.job_id, location="US")
    assert (f"Not found: Job {local_env.project}:US.{job.job_id} was not found in location US"
            in caught.value.message)


def test_loads_and_extracts_run_where_their_table_is(bq, local_env):
    from google.api_core import exceptions

    job = bq.load_table_from_json([{"x": 2}], f"{local_env.project}.loc_eu.loaded")
    job.result()
    assert job.location == "EU"
    with pytest.raises(exceptions.NotFound, match="loc_eu was not found in location US"):
        bq.load_table_from_json([{"x": 3}], f"{local_env.project}.loc_eu.loaded",
                                location="US").result()
    extract = bq.extract_table(f"{local_env.project}.loc_eu.t",
                               f"gs://{local_env.bucket}/loc/eu-*.csv")
    extract.result()
    assert extract.location == "EU"


def test_create_schema_with_a_location(bq, local_env):
    bq.query("CREATE SCHEMA loc_ddl OPTIONS (location = 'europe-west4')").result()
    assert bq.get_dataset("loc_ddl").location == "europe-west4"


def test_a_vertex_dataset_uses_bigquery_data_of_its_region(bq, local_env):
    from google.api_core import exceptions
    from google.cloud import aiplatform

    aiplatform.init(project=local_env.project, location="us-central1")
    with pytest.raises(exceptions.BadRequest, match="loc_eu is in EU, and Vertex AI in "
                                                    "us-central1 uses BigQuery data in "
                                                    "us-central1 or the US multi-region"):
        aiplatform.TabularDataset.create(display_name="eu",
                                         bq_source=f"bq://{local_env.project}.loc_eu.t")
    for name in ("loc_us", "loc_region"):  # the multi-region containing it, or the region
        dataset = aiplatform.TabularDataset.create(
            display_name=name, bq_source=f"bq://{local_env.project}.{name}.t")
        dataset.delete()
    aiplatform.init(location="europe-west4")
    dataset = aiplatform.TabularDataset.create(display_name="eu-ok",
                                               bq_source=f"bq://{local_env.project}.loc_eu.t")
    dataset.delete()
    aiplatform.init(location="us-central1")


def test_a_pipeline_query_in_the_wrong_location_fails_its_task(local_env, tmp_path):
    # Google's BigqueryQueryJobOp runs its job in `location`: the public data is in US, so a
    # pipeline that passes its Vertex AI region there fails as it does on Google Cloud.
    from google.cloud import aiplatform
    from kfp import compiler

    from .pipeline_defs import query_in_region

    path = str(tmp_path / "query.yaml")
    compiler.Compiler().compile(query_in_region, path)
    aiplatform.init(project=local_env.project, location="us-central1")
    job = aiplatform.PipelineJob(
        display_name="query-in-region", template_path=path, enable_caching=False,
        pipeline_root=f"gs://{local_env.bucket}/pipeline-root",
        parameter_values={"project": local_env.project, "location": "us-central1"})
    with pytest.raises(RuntimeError):
        job.run(service_account="pipelines-runner@pmle-labs-local.iam.gserviceaccount.com")
    task = {t.task_name: t for t in job.task_details}["bigquery-query-job"]
    assert task.state.name == "FAILED"
    assert ("Not found: Dataset bigquery-public-data:ml_datasets was not found in location "
            "us-central1") in task.error.message
