"""Local Dataflow: the same Beam word count (gs:// text in, counts to gs:// out) submitted by
the DataflowRunner to the local Dataflow (staging, gRPC job creation, a worker process
running the pipeline proto with Beam's FnApiRunner, the runner's own polling) against the
DirectRunner in this process, and a one-element job's end-to-end time, first and later
(the fixed cost a learner waits for; the DataflowRunner polls the job every 5 s). Smoke
mode: tiny input."""

from __future__ import annotations

import random
import time
import uuid

WORDS = ["dataflow", "beam", "bigquery", "vertex", "storage", "pipeline", "tensor", "feature",
         "window", "trigger", "shard", "bundle"]


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def run(smoke: bool = False) -> list[dict]:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from google.cloud import storage

    import labkit

    env = labkit.start()
    prefix = f"bench-dataflow/{uuid.uuid4().hex[:8]}"
    lines = 300 if smoke else 120_000
    rng = random.Random(0)
    text = "\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
                     for _ in range(lines)) + "\n"
    words = len(text.split())
    bucket = storage.Client().bucket(env.bucket)
    bucket.blob(f"{prefix}/input.txt").upload_from_string(text)
    source = f"gs://{env.bucket}/{prefix}/input.txt"

    def options(runner: str) -> PipelineOptions:
        extra = {"job_name": f"bench-{uuid.uuid4().hex[:10]}"} if runner == "DataflowRunner" \
            else {}
        return PipelineOptions(runner=runner, project=env.project, region=env.region,
                               temp_location=f"gs://{env.bucket}/{prefix}/temp", **extra)

    def word_count(runner: str) -> None:
        pipeline = beam.Pipeline(options=options(runner))
        (pipeline
         | beam.io.ReadFromText(source)
         | beam.FlatMap(str.split)
         | beam.combiners.Count.PerElement()
         | beam.MapTuple(lambda word, n: f"{word}: {n}")
         | beam.io.WriteToText(f"gs://{env.bucket}/{prefix}/{runner}/counts"))
        state = pipeline.run().wait_until_finish()
        assert state == "DONE", state

    def one_element() -> None:
        pipeline = beam.Pipeline(options=options("DataflowRunner"))
        pipeline | beam.Create([1]) | beam.Map(lambda x: x + 1)
        assert pipeline.run().wait_until_finish() == "DONE"

    fixed = _seconds(one_element)  # the first job: its worker imports Beam
    warm = _seconds(one_element)  # a spare worker has imported it already
    direct = _seconds(lambda: word_count("DirectRunner"))
    dataflow = _seconds(lambda: word_count("DataflowRunner"))
    for blob in bucket.list_blobs(prefix=prefix):
        blob.delete()
    return [
        {"name": f"word count of {words:,} words from gs://: DataflowRunner on the local "
                 f"Dataflow vs DirectRunner (s)", "value": round(dataflow, 2), "unit": "s",
         "baseline": round(direct, 2), "ratio": round(dataflow / direct, 2),
         "target": "ratio < 1.5"},
        {"name": "one-element job on the local Dataflow, submit to DONE: first job (s)",
         "value": round(fixed, 2), "unit": "s"},
        {"name": "one-element job on the local Dataflow, submit to DONE: later jobs (s)",
         "value": round(warm, 2), "unit": "s"},
    ]
