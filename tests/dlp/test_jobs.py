"""DLP inspect jobs over a local BigQuery table, findings saved to BigQuery, through the real
dlp_v2 and bigquery clients."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.cloud import bigquery, dlp_v2

State = dlp_v2.DlpJob.JobState


@pytest.fixture(scope="module")
def source(local_env):
    client = bigquery.Client()
    client.create_dataset("dlp_src", exists_ok=True)
    client.query_and_wait("""
        CREATE OR REPLACE TABLE dlp_src.customers AS
        SELECT * FROM UNNEST([
          STRUCT(1 AS id, 'Ada writes from ada@example.com' AS note, '123-45-6789' AS ssn),
          STRUCT(2, 'no contact details', '666-00-1234'),
          STRUCT(3, 'bob@example.org or call (206) 555-0123', NULL)])""")
    return client


def wait(dlp, name, timeout=60):
    deadline = time.monotonic() + timeout
    while (job := dlp.get_dlp_job(name=name)).state in (State.PENDING, State.RUNNING):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def inspect_job(project, table="customers", output="findings", **config):
    return {
        "storage_config": {"big_query_options": {"table_reference": {
            "project_id": project, "dataset_id": "dlp_src", "table_id": table}}},
        "inspect_config": {"info_types": [{"name": "EMAIL_ADDRESS"},
                                          {"name": "US_SOCIAL_SECURITY_NUMBER"},
                                          {"name": "PHONE_NUMBER"}],
                           "include_quote": True, **config},
        "actions": [{"save_findings": {"output_config": {"table": {
            "project_id": project, "dataset_id": "dlp_src", "table_id": output}}}}]}


def test_inspect_job_writes_findings_to_bigquery(dlp, parent, source, local_env):
    project = local_env.project
    job = dlp.create_dlp_job(request={"parent": parent,
                                      "inspect_job": inspect_job(project)})
    assert job.name.startswith(f"{parent}/dlpJobs/i-")
    assert job.state == State.PENDING and job.type_ == dlp_v2.DlpJobType.INSPECT_JOB
    done = wait(dlp, job.name)
    assert done.state == State.DONE, done.errors
    stats = {s.info_type.name: s.count for s in done.inspect_details.result.info_type_stats}
    assert stats == {"EMAIL_ADDRESS": 2, "US_SOCIAL_SECURITY_NUMBER": 1, "PHONE_NUMBER": 1}
    assert done.inspect_details.result.processed_bytes > 0
    assert done.start_time and done.end_time
    rows = source.query_and_wait("""
        SELECT quote, info_type.name AS info_type, likelihood,
               location.content_locations[OFFSET(0)].record_location.field_id.name AS field,
               location.content_locations[OFFSET(0)].record_location.record_key
                   .big_query_key.row_number AS row_number, job_name
        FROM dlp_src.findings ORDER BY row_number, quote""").to_dataframe()
    assert rows.quote.tolist() == ["123-45-6789", "ada@example.com", "(206) 555-0123",
                                   "bob@example.org"]
    assert rows.field.tolist() == ["ssn", "note", "note", "note"]
    assert set(rows.likelihood) <= {"LIKELY", "VERY_LIKELY"}
    assert set(rows.job_name) == {job.name}


def test_get_list_delete(dlp, parent, source, local_env):
    job = dlp.create_dlp_job(request={"parent": parent, "job_id": "listed-1",
                                      "inspect_job": inspect_job(local_env.project,
                                                                 output="listed")})
    assert job.name == f"{parent}/dlpJobs/listed-1"
    wait(dlp, job.name)
    names = [j.name for j in dlp.list_dlp_jobs(request={"parent": parent})]
    assert job.name in names
    with pytest.raises(exceptions.AlreadyExists):
        dlp.create_dlp_job(request={"parent": parent, "job_id": "listed-1",
                                    "inspect_job": inspect_job(local_env.project)})
    dlp.delete_dlp_job(name=job.name)
    with pytest.raises(exceptions.NotFound):
        dlp.get_dlp_job(name=job.name)


def test_a_missing_table_fails_the_job(dlp, parent, source, local_env):
    job = dlp.create_dlp_job(request={"parent": parent, "inspect_job": inspect_job(
        local_env.project, table="nope")})
    done = wait(dlp, job.name)
    assert done.state == State.FAILED
    assert "nope" in done.errors[0].details.message


def test_bad_job_requests(dlp, parent, local_env):
    with pytest.raises(exceptions.InvalidArgument, match="Invalid built-in info type name"):
        dlp.create_dlp_job(request={"parent": parent, "inspect_job": inspect_job(
            local_env.project, info_types=[{"name": "NOPE"}])})
    with pytest.raises(exceptions.InvalidArgument, match="table_reference"):
        dlp.create_dlp_job(request={"parent": parent, "inspect_job": {
            "storage_config": {"big_query_options": {"table_reference": {
                "project_id": local_env.project}}}}})
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        dlp.create_dlp_job(request={"parent": parent, "inspect_job": {
            "storage_config": {"cloud_storage_options": {"file_set": {"url": "gs://b/*"}}}}})
    with pytest.raises(exceptions.InvalidArgument, match="job_id"):
        dlp.create_dlp_job(request={"parent": parent, "job_id": "bad id!",
                                    "inspect_job": inspect_job(local_env.project)})
    with_schema = inspect_job(local_env.project)
    with_schema["actions"][0]["save_findings"]["output_config"]["output_schema"] = "BASIC_COLUMNS"
    with pytest.raises(exceptions.MethodNotImplemented, match="output_schema"):
        dlp.create_dlp_job(request={"parent": parent, "inspect_job": with_schema})


def test_job_options_rows_identifying_fields_and_limits(dlp, parent, source, local_env):
    project = local_env.project
    config = inspect_job(project, output="keyed", limits={"max_findings_per_request": 2})
    config["storage_config"]["big_query_options"].update(
        identifying_fields=[{"name": "id"}], excluded_fields=[{"name": "ssn"}])
    done = wait(dlp, dlp.create_dlp_job(request={"parent": parent,
                                                 "inspect_job": config}).name)
    assert done.state == State.DONE, done.errors
    assert sum(s.count for s in done.inspect_details.result.info_type_stats) == 2
    rows = source.query_and_wait("""
        SELECT quote, location.content_locations[OFFSET(0)].record_location.record_key
                   .id_values AS ids
        FROM dlp_src.keyed ORDER BY quote""").to_dataframe()
    # the first two findings in table order (ssn excluded), each row named by its id
    assert rows.quote.tolist() == ["ada@example.com", "bob@example.org"]
    assert [list(ids) for ids in rows.ids] == [["1"], ["3"]]
    one = inspect_job(project, output="first_row")
    one["storage_config"]["big_query_options"]["rows_limit"] = 1
    done = wait(dlp, dlp.create_dlp_job(request={"parent": parent, "inspect_job": one}).name)
    assert {s.info_type.name: s.count for s in done.inspect_details.result.info_type_stats} \
        == {"EMAIL_ADDRESS": 1, "US_SOCIAL_SECURITY_NUMBER": 1}
