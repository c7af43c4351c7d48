"""Supervised tuning of the local Gemma through google-genai (client.tunings) and the Vertex
AI SDK (vertexai.tuning.sft), against the local tuningJobs service.

One real tuning job (24 ticket-routing examples, 6 LoRA steps, about a minute on two busy
cores) is shared by the module; held-out examples show it beats the base model. Every bad
request is refused before any training starts."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.genai import tuning_data

pytestmark = pytest.mark.usefixtures("local_env")
FLASH = "gemini-2.5-flash"
HELD_OUT = tuning_data.examples(6, seed=2)


@pytest.fixture(scope="module")
def client(local_env):
    from google import genai

    return genai.Client()


def upload(local_env, data: bytes) -> str:
    from google.cloud import storage

    name = f"tuning/{uuid.uuid4().hex[:8]}.jsonl"
    storage.Client().bucket(local_env.bucket).blob(name).upload_from_string(data)
    return f"gs://{local_env.bucket}/{name}"


@pytest.fixture(scope="module")
def train_uri(local_env):
    return upload(local_env, tuning_data.jsonl(tuning_data.examples(24, seed=1)))


def config(**kw):
    from google.genai import types

    return types.CreateTuningJobConfig(**kw)


def dataset(uri: str):
    from google.genai import types

    return types.TuningDataset(gcs_uri=uri)


def wait(client, name: str, timeout: float = 600):
    deadline = time.monotonic() + timeout
    while True:
        job = client.tunings.get(name=name)
        if job.has_ended or time.monotonic() > deadline:
            return job


@pytest.fixture(scope="module")
def tuned(client, local_env, train_uri):
    from google.genai import types

    validation = upload(local_env, tuning_data.jsonl(HELD_OUT))
    job = client.tunings.tune(
        base_model=FLASH, training_dataset=dataset(train_uri),
        config=config(epoch_count=1, adapter_size="ADAPTER_SIZE_FOUR",
                      learning_rate_multiplier=2.0, tuned_model_display_name="ticket-router",
                      validation_dataset=types.TuningValidationDataset(gcs_uri=validation)))
    assert job.state.name in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING")
    return job, wait(client, job.name)


def exact_match(client, model: str) -> int:
    from google.genai import types

    right = 0
    for question, answer in HELD_OUT:
        r = client.models.generate_content(
            model=model, contents=question, config=types.GenerateContentConfig(
                temperature=0, max_output_tokens=3, system_instruction=tuning_data.SYSTEM))
        right += (r.text or "").strip() == answer
    return right


def test_the_job_reports_its_data_and_succeeds(tuned):
    created, job = tuned
    assert job.state.name == "JOB_STATE_SUCCEEDED", job.error
    assert job.create_time <= job.start_time <= job.end_time
    stats = job.tuning_data_stats.supervised_tuning_data_stats
    assert stats.tuning_dataset_example_count == 24 and stats.tuning_step_count == 6
    assert stats.user_output_token_distribution.sum > 24  # codes and end of text, counted
    assert stats.user_input_token_distribution.max > stats.user_input_token_distribution.min
    assert len(stats.user_dataset_examples) == 6  # three examples, two turns each
    hyper = job.supervised_tuning_spec.hyper_parameters
    assert hyper.epoch_count == 1 and hyper.adapter_size.name == "ADAPTER_SIZE_FOUR"
    assert job.tuning_job_metadata.completed_step_count == 6
    assert job.tuned_model.endpoint.split("/")[-2] == "endpoints"
    assert job.tuned_model.model.endswith("@1")
    from vertexai.tuning import sft

    seen = sft.SupervisedTuningJob(job.name)  # the Vertex SDK reads the same job
    assert seen.has_succeeded and seen.tuned_model_endpoint_name == job.tuned_model.endpoint


def test_metrics_are_in_the_jobs_experiment(tuned):
    from google.cloud import aiplatform

    _, job = tuned
    frame = aiplatform.get_experiment_df(job.experiment.rsplit("/", 1)[-1])
    row = frame.iloc[0]
    assert row["param.adapter_size"] == 4 and row["param.base_model"] == FLASH
    assert row["metric./eval_total_loss"] < row["metric./eval_total_loss_before_tuning"] / 2
    assert 0 < row["metric./train_total_loss"]


def test_the_tuned_model_beats_the_base_on_held_out_tickets(client, tuned):
    _, job = tuned
    base, after = exact_match(client, FLASH), exact_match(client, job.tuned_model.endpoint)
    assert after > base and after >= 4, (base, after)
    by_model = client.models.generate_content(
        model=job.tuned_model.model.partition("@")[0], contents=HELD_OUT[0][0],
        config={"temperature": 0, "max_output_tokens": 4,
                "system_instruction": tuning_data.SYSTEM})
    assert by_model.text.strip() in tuning_data.QUEUES
    streamed = "".join(c.text or "" for c in client.models.generate_content_stream(
        model=job.tuned_model.endpoint, contents=HELD_OUT[1][0],
        config={"temperature": 0, "max_output_tokens": 4,
                "system_instruction": tuning_data.SYSTEM}))
    assert streamed.strip() in tuning_data.QUEUES
    counted = client.models.count_tokens(model=job.tuned_model.endpoint, contents="Ticket: hi")
    assert counted.total_tokens == client.models.count_tokens(model=FLASH,
                                                              contents="Ticket: hi").total_tokens


def test_adapters_are_checksummed_arrays_and_loss_fell(tuned, local_env):
    import hashlib
    import json

    import numpy as np

    from labkit.genai.tuning.jobs import read_progress
    from labkit.workspace import Workspace

    _, job = tuned
    folder = Workspace.from_env().root / "genai" / "tuning" / job.name.rsplit("/", 1)[-1]
    meta = json.loads((folder / "adapters.json").read_text())
    assert hashlib.sha256((folder / "adapters.npz").read_bytes()).hexdigest() == meta["sha256"]
    with np.load(folder / "adapters.npz", allow_pickle=False) as npz:
        assert npz["q.a"].shape == (18, 640, 4) and npz["v.b"].shape == (18, 4, 256)
    evals = read_progress(folder)["eval"]
    assert evals[-1]["loss"] < evals[0]["loss"] / 2  # held-out loss, base vs tuned


def test_listed_cancel_refused_when_ended_endpoint_listed_then_deleted(client, tuned):
    from google.cloud import aiplatform
    from google.genai import errors

    _, job = tuned
    assert job.name in [j.name for j in client.tunings.list()]
    with pytest.raises(errors.ClientError) as refused:
        client.tunings.cancel(name=job.name)
    assert refused.value.code == 400
    endpoint = job.tuned_model.endpoint
    assert endpoint in [e.resource_name for e in aiplatform.Endpoint.list()]
    aiplatform.Endpoint(endpoint).delete(force=True)
    with pytest.raises(errors.ClientError) as gone:
        client.models.generate_content(model=endpoint, contents="Ticket: refund please")
    assert gone.value.code == 404


def test_vertex_sdk_sft_train_and_cancel(client, train_uri):
    from vertexai.tuning import sft

    job = sft.train(source_model="gemini-2.0-flash-001", train_dataset=train_uri, epochs=2,
                    adapter_size=1, learning_rate_multiplier=0.5,
                    tuned_model_display_name="sdk-router")
    assert isinstance(job, sft.SupervisedTuningJob)
    job.cancel()
    ended = wait(client, job.resource_name, timeout=60)
    assert ended.state.name == "JOB_STATE_CANCELLED"
    again = sft.SupervisedTuningJob(job.resource_name)
    assert again.has_ended and not again.has_succeeded
    assert again.tuning_data_statistics.supervised_tuning_data_stats \
        .tuning_dataset_example_count == 24


def bad(client, base=FLASH, uri=None, **kw):
    from google.genai import errors

    with pytest.raises(errors.APIError) as refused:
        client.tunings.tune(base_model=base, training_dataset=dataset(uri), config=config(**kw))
    return refused.value


def test_unknown_base_model_and_hyperparameters_out_of_range(client, train_uri):
    e = bad(client, base="gemini-1.0-ultra", uri=train_uri)
    assert e.code == 400 and "not supported for supervised tuning" in e.message
    e = bad(client, base="gemini-2.5-pro", uri=train_uri, adapter_size="ADAPTER_SIZE_SIXTEEN")
    assert e.code == 400 and "Adapter size 16 is not supported for gemini-2.5-pro" in e.message
    assert bad(client, uri=train_uri, epoch_count=0).code == 400
    assert bad(client, uri=train_uri, learning_rate_multiplier=-1.0).code == 400
    assert bad(client, uri=train_uri, learning_rate=0.01).code == 400  # open models only


def test_bad_datasets_name_the_line(client, local_env):
    good = tuning_data.jsonl(tuning_data.examples(20, seed=3)).decode().splitlines()
    broken = good[:2] + ['{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}'] + good
    e = bad(client, uri=upload(local_env, "\n".join(broken).encode()))
    assert e.code == 400 and "line 3" in e.message and "end with a model turn" in e.message
    e = bad(client, uri=upload(local_env, b"{not json\n" + "\n".join(good).encode()))
    assert e.code == 400 and "line 1" in e.message
    e = bad(client, uri=upload(local_env, "\n".join(good[:5]).encode()))
    assert e.code == 400 and "minimum of 16 examples" in e.message
    roles = good[:1] + ['{"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}']
    e = bad(client, uri=upload(local_env, "\n".join(roles + good).encode()))
    assert e.code == 400 and "line 2" in e.message and "assistant" in e.message
    e = bad(client, uri=f"gs://{local_env.bucket}/tuning/missing.jsonl")
    assert e.code == 400 and "does not exist" in e.message
    e = bad(client, uri="gs://no-such-bucket-here/x.jsonl")
    assert e.code == 400


def test_messages_format_is_accepted_and_an_unknown_job_is_404(client, local_env):
    import json

    from google.genai import errors

    lines = [json.dumps({"messages": [{"role": "system", "content": tuning_data.SYSTEM},
                                      {"role": "user", "content": q},
                                      {"role": "model", "content": a}]})
             for q, a in tuning_data.examples(16, seed=4)]
    job = client.tunings.tune(base_model="gemini-2.5-flash-lite",
                              training_dataset=dataset(upload(local_env,
                                                              "\n".join(lines).encode())))
    client.tunings.cancel(name=job.name)
    assert job.tuning_data_stats.supervised_tuning_data_stats.tuning_dataset_example_count == 16
    missing = job.name.rsplit("/", 1)[0] + "/123456789"
    with pytest.raises(errors.ClientError) as gone:
        client.tunings.get(name=missing)
    assert gone.value.code == 404


def test_the_served_decoder_is_the_trained_graph(tuned, local_env):
    """The trainer measured the held-out loss in TensorFlow, before tuning and after; the
    NumPy decoder that serves the endpoint (base weights, then adapters merged) must give
    the same losses on the same tokens: one model, two engines."""
    import numpy as np

    from labkit.genai.engine import one_blas_thread
    from labkit.genai.gemma import Gemma3
    from labkit.genai.tokenizer import GemmaTokenizer
    from labkit.genai.tuning import lora
    from labkit.genai.tuning.jobs import read_progress
    from labkit.workspace import Workspace

    _, job = tuned
    folder = Workspace.from_env().root / "genai" / "tuning" / job.name.rsplit("/", 1)[-1]
    evals = read_progress(folder)["eval"]
    gemma = Gemma3()
    tokenizer = GemmaTokenizer(gemma.vocab)

    def held_out_loss(model) -> float:
        losses = []
        for question, answer in HELD_OUT:
            seq = lora.sequence(tokenizer, tuning_data.SYSTEM,
                                [("user", question), ("model", answer)])
            first = seq.targets.index(True)  # the answer and its end of text close it
            cache = model.new_cache(len(seq.tokens))
            logits = model.forward(seq.tokens[:first], cache)  # predicts token `first`
            for i in range(first, len(seq.tokens)):
                row = logits.astype(np.float64)
                top = row.max()
                losses.append(top + np.log(np.exp(row - top).sum()) - row[seq.tokens[i]])
                if i + 1 < len(seq.tokens):
                    logits = model.forward([seq.tokens[i]], cache)
        return float(np.mean(losses))

    with one_blas_thread():  # as the engine decodes: a second thread only contends
        assert held_out_loss(gemma) == pytest.approx(evals[0]["loss"], rel=1e-3)
        assert held_out_loss(lora.merged(gemma, *lora.load(folder))) == pytest.approx(
            evals[-1]["loss"], rel=1e-3, abs=1e-3)
