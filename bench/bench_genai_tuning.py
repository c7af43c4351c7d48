"""Local Gen AI supervised tuning: one tuning job through google-genai on a lab-sized
dataset (64 ticket-routing examples, one epoch, adapter size 4), reporting the trainer's
steps per second, seconds per epoch, its start-up (TensorFlow and the weights) and the
job's wall time. Smoke mode creates a job on 16 examples and cancels it at once (the
service, the validation and the child process start, without the minute of training)."""

from __future__ import annotations

import time
import uuid


def run(smoke: bool = False) -> list[dict]:
    from google import genai
    from google.cloud import storage
    from google.genai import types

    import labkit
    from labkit.genai.tuning.jobs import read_progress
    from labkit.workspace import Workspace
    from tests.genai import tuning_data

    env = labkit.start()
    client = genai.Client()
    count = 16 if smoke else 64
    name = f"bench/tuning-{uuid.uuid4().hex[:6]}.jsonl"
    storage.Client().bucket(env.bucket).blob(name).upload_from_string(
        tuning_data.jsonl(tuning_data.examples(count, seed=1)))
    started = time.perf_counter()
    job = client.tunings.tune(
        base_model="gemini-2.5-flash",
        training_dataset=types.TuningDataset(gcs_uri=f"gs://{env.bucket}/{name}"),
        config=types.CreateTuningJobConfig(epoch_count=1, adapter_size="ADAPTER_SIZE_FOUR"))
    created = time.perf_counter() - started
    rows = [{"name": f"tuning: create (validate {count} examples, count tokens)",
             "value": created, "unit": "s"}]
    if smoke:
        client.tunings.cancel(name=job.name)
        while not client.tunings.get(name=job.name).has_ended:
            time.sleep(0.2)
        return rows
    while not (job := client.tunings.get(name=job.name)).has_ended:
        time.sleep(1)
    assert job.has_succeeded, job.error
    wall = time.perf_counter() - started
    progress = read_progress(Workspace.from_env().root / "genai" / "tuning" /
                             job.name.rsplit("/", 1)[-1])
    steps = progress["step"]
    rows += [
        {"name": f"tuning: LoRA steps/s (batch 4, {count} examples, rank 4, after the first)",
         "value": progress["stepsPerSecond"], "unit": "steps/s"},
        {"name": f"tuning: seconds per epoch ({count} examples, {steps} steps)",
         "value": progress["epochSeconds"][0], "unit": "s"},
        {"name": "tuning: trainer start-up (TensorFlow, weights into the graph)",
         "value": progress["loadSeconds"], "unit": "s"},
        {"name": "tuning: job wall time, create to SUCCEEDED", "value": wall, "unit": "s"},
    ]
    return rows
