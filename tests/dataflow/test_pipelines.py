"""Beam pipelines submitted by the DataflowRunner to the local Dataflow give what the
DirectRunner gives; the job is then visible through google-cloud-dataflow-client."""

from __future__ import annotations

import collections
import random
import uuid

import pytest
from google.cloud import dataflow_v1beta3, storage

WORDS = ["dataflow", "beam", "bigquery", "vertex", "storage", "pipeline", "tensor", "feature"]


def _text(seed: int, lines: int = 300) -> str:
    rng = random.Random(seed)
    return "\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
                     for _ in range(lines)) + "\n"


def _upload(uri: str, text: str) -> None:
    bucket, _, name = uri[len("gs://"):].partition("/")
    storage.Client().bucket(bucket).blob(name).upload_from_string(text)


def _read_shards(prefix: str) -> list[str]:
    bucket, _, name = prefix[len("gs://"):].partition("/")
    lines = []
    for blob in storage.Client().list_blobs(bucket, prefix=name):
        lines += blob.download_as_text().splitlines()
    return lines


def get_job(client, project: str, job_id: str):
    return client.get_job(request={"project_id": project, "location": "us-central1",
                                   "job_id": job_id})


def word_count(options, source: str, target: str):
    """The learner's pipeline: the same code on both runners. Returns the result."""
    import apache_beam as beam
    from apache_beam.metrics import Metrics

    words_seen = Metrics.counter("wordcount", "words")
    lengths = Metrics.distribution("wordcount", "word_length")

    def split(line):
        for word in line.split():
            words_seen.inc()
            lengths.update(len(word))
            yield word

    pipeline = beam.Pipeline(options=options)
    (pipeline
     | "Read" >> beam.io.ReadFromText(source)
     | "Split" >> beam.FlatMap(split)
     | "Count" >> beam.combiners.Count.PerElement()
     | "Format" >> beam.MapTuple(lambda word, n: f"{word}: {n}")
     | "Write" >> beam.io.WriteToText(target))
    result = pipeline.run()
    result.wait_until_finish()
    return result


@pytest.fixture(scope="module")
def counted(pipeline_options, gcs_prefix):
    """The word count run once on each runner over the same gs:// text."""
    text = _text(7)
    source = f"{gcs_prefix}/wordcount/input.txt"
    _upload(source, text)
    results = {}
    for runner in ("DirectRunner", "DataflowRunner"):
        target = f"{gcs_prefix}/wordcount/{runner}/counts"
        results[runner] = (word_count(pipeline_options(runner), source, target),
                           sorted(_read_shards(target)))
    return text, results


def test_word_count_same_on_both_runners(counted):
    text, results = counted
    expected = sorted(f"{w}: {n}" for w, n in collections.Counter(text.split()).items())
    assert results["DirectRunner"][1] == expected
    assert results["DataflowRunner"][1] == expected
    assert results["DataflowRunner"][0].state == "DONE"


def test_user_metrics_come_back_through_dataflow(counted):
    text, results = counted
    words = text.split()
    for runner in ("DirectRunner", "DataflowRunner"):
        query = results[runner][0].metrics().query()
        (counter,) = [c for c in query["counters"] if c.key.metric.name == "words"]
        assert counter.committed == len(words), runner
        assert counter.key.step == "Split", runner  # the transform's name, not an id
        (dist,) = [d for d in query["distributions"] if d.key.metric.name == "word_length"]
        assert dist.committed.count == len(words)
        assert dist.committed.max == max(map(len, words))


def test_job_through_the_dataflow_client(counted, local_env, jobs_client):
    result = counted[1]["DataflowRunner"][0]
    job_id = result.job_id()
    job = get_job(jobs_client, local_env.project, job_id)
    assert job.current_state == dataflow_v1beta3.JobState.JOB_STATE_DONE
    assert job.type_ == dataflow_v1beta3.JobType.JOB_TYPE_BATCH
    assert job.location == "us-central1" and job.name == result._job.name
    listed = jobs_client.list_jobs(request={"project_id": local_env.project,
                                            "location": "us-central1"})
    assert job_id in [j.id for j in listed]
    terminated = jobs_client.list_jobs(request={
        "project_id": local_env.project, "location": "us-central1",
        "filter": dataflow_v1beta3.ListJobsRequest.Filter.ACTIVE})
    assert job_id not in [j.id for j in terminated]

    messages = dataflow_v1beta3.MessagesV1Beta3Client().list_job_messages(
        request={"project_id": local_env.project, "location": "us-central1",
                 "job_id": job_id})
    texts = [m.message_text for m in messages]
    assert any("finished" in t for t in texts), texts

    metrics = dataflow_v1beta3.MetricsV1Beta3Client().get_job_metrics(
        request={"project_id": local_env.project, "location": "us-central1",
                 "job_id": job_id})
    counts = {m.name.context["output_user_name"]: m.scalar for m in metrics.metrics
              if m.name.name == "ElementCount"}
    words = len(counted[0].split())
    assert any(name.startswith("Split") and n == words for name, n in counts.items()), counts
    assert any(name.startswith("Format") and n == len(set(counted[0].split()))
               for name, n in counts.items()), counts


def test_a_failing_dofn_fails_the_job_with_its_traceback(pipeline_options, jobs_client,
                                                         local_env):
    import apache_beam as beam
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRuntimeException

    marker = f"bad-record-{uuid.uuid4().hex[:6]}"

    def parse(value):
        if value == 3:
            raise ValueError(marker)
        return value

    pipeline = beam.Pipeline(options=pipeline_options("DataflowRunner"))
    pipeline | beam.Create([1, 2, 3, 4]) | beam.Map(parse)
    result = pipeline.run()
    with pytest.raises(DataflowRuntimeException) as raised:
        result.wait_until_finish()
    assert marker in str(raised.value) and "Traceback" in str(raised.value)
    assert result.state == "FAILED"
    messages = dataflow_v1beta3.MessagesV1Beta3Client().list_job_messages(request={
        "project_id": local_env.project, "location": "us-central1",
        "job_id": result.job_id(),
        "minimum_importance": dataflow_v1beta3.JobMessageImportance.JOB_MESSAGE_ERROR})
    errors = [m.message_text for m in messages]
    assert errors and any(marker in t for t in errors)
    assert all(m.message_importance == dataflow_v1beta3.JobMessageImportance.JOB_MESSAGE_ERROR
               for m in messages)


def test_cancel_stops_a_running_job(pipeline_options, jobs_client, local_env):
    import time

    import apache_beam as beam

    def slow(value):
        time.sleep(120)
        return value

    pipeline = beam.Pipeline(options=pipeline_options("DataflowRunner"))
    pipeline | beam.Create([1]) | beam.Map(slow)
    result = pipeline.run()
    job = get_job(jobs_client, local_env.project, result.job_id())
    assert job.current_state.name in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING")
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRuntimeException

    result.cancel()
    with pytest.raises(DataflowRuntimeException, match="State: CANCELLED"):
        result.wait_until_finish()  # Beam raises for any end but DONE, as on Dataflow
    job = get_job(jobs_client, local_env.project, result.job_id())
    assert job.current_state == dataflow_v1beta3.JobState.JOB_STATE_CANCELLED
    assert job.requested_state == dataflow_v1beta3.JobState.JOB_STATE_CANCELLED
