"""Token-by-token streaming (streamGenerateContent?alt=sse) and the generation requests
Vertex AI refuses, through google-genai."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.usefixtures("local_env")
FLASH = "gemini-2.5-flash"
STORY = "Tell me a long story about a dragon."


@pytest.fixture(scope="module")
def client(local_env):
    from google import genai

    return genai.Client()


def cfg(**kw):
    from google.genai import types

    kw.setdefault("temperature", 0)
    return types.GenerateContentConfig(**kw)


def test_chunks_arrive_while_the_model_writes(client):
    client.models.generate_content(model=FLASH, contents=STORY, config=cfg(max_output_tokens=1))
    start = time.perf_counter()
    client.models.generate_content(model=FLASH, contents=STORY, config=cfg(max_output_tokens=24))
    whole_s = time.perf_counter() - start
    start, arrivals, chunks = time.perf_counter(), [], []
    for chunk in client.models.generate_content_stream(model=FLASH, contents=STORY,
                                                       config=cfg(max_output_tokens=24)):
        arrivals.append(time.perf_counter() - start)
        chunks.append(chunk)
    whole = client.models.generate_content(model=FLASH, contents=STORY,
                                           config=cfg(max_output_tokens=24))
    assert "".join(c.text or "" for c in chunks) == whole.text
    assert len(chunks) >= 8  # about one event per token, not one at the end
    assert arrivals[0] < whole_s / 2, (arrivals[0], whole_s)
    *body, last = chunks
    assert all(c.candidates[0].finish_reason is None and c.usage_metadata is None
               for c in body)
    assert last.candidates[0].finish_reason.name == "MAX_TOKENS"
    assert last.usage_metadata.candidates_token_count == 24
    assert len({c.response_id for c in chunks}) == 1


def test_a_stop_sequence_never_leaks_into_the_stream(client):
    whole = client.models.generate_content(model=FLASH, contents="Count: one, two,",
                                           config=cfg(max_output_tokens=12))
    stop = whole.text.split()[1]  # a word the greedy answer contains
    streamed = "".join(c.text or "" for c in client.models.generate_content_stream(
        model=FLASH, contents="Count: one, two,",
        config=cfg(max_output_tokens=12, stop_sequences=[stop])))
    assert streamed == whole.text[:whole.text.find(stop)].rstrip() and stop not in streamed


def test_json_and_several_candidates_stream_whole(client):
    chunks = list(client.models.generate_content_stream(
        model=FLASH, contents="Name a colour.", config=cfg(
            temperature=1.0, seed=3, candidate_count=2, max_output_tokens=4)))
    indexes = {c.index for c in chunks[-1].candidates}
    assert indexes == {0, 1} and chunks[-1].usage_metadata.candidates_token_count == 8


def test_a_refused_stream_is_an_ordinary_error(client):
    from google.genai import errors

    with pytest.raises(errors.APIError) as info:
        list(client.models.generate_content_stream(model=FLASH, contents="x",
                                                   config=cfg(top_k=0)))
    assert info.value.code == 400 and "topK" in info.value.message


@pytest.mark.parametrize("config, words", [
    ({"temperature": 2.5}, "temperature value of 2.5"),
    ({"top_p": 1.5}, "topP value of 1.5"),
    ({"top_k": 0}, "topK value of 0"),
    ({"candidate_count": 9}, "candidateCount value of 9"),
    ({"candidate_count": 0}, "candidateCount value of 0"),
    ({"max_output_tokens": 0}, "maxOutputTokens value of 0"),
])
def test_parameters_out_of_range_are_400s(client, config, words):
    from google.genai import errors

    with pytest.raises(errors.APIError) as info:
        client.models.generate_content(model=FLASH, contents="x", config=cfg(**config))
    assert info.value.code == 400 and words in info.value.message
    assert "supported range" in info.value.message


def test_empty_contents_and_a_prompt_over_the_window(client, local_env):
    import requests
    from google.genai import errors

    from labkit.genai.engine import INPUT_TOKEN_LIMIT

    token = (local_env.workspace / "token").read_text().strip()
    with pytest.raises(ValueError, match="contents are required"):  # google-genai's own check
        client.models.generate_content(model=FLASH, contents=[])
    for body in ({}, {"contents": []}):  # what another client could send
        r = requests.post(f"{local_env.endpoint}/v1/projects/{local_env.project}/locations/"
                          f"us-central1/publishers/google/models/{FLASH}:generateContent",
                          json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert r.status_code == 400 and "empty contents" in r.json()["error"]["message"]
    long = "word " * (INPUT_TOKEN_LIMIT + 10)
    with pytest.raises(errors.APIError) as info:
        client.models.generate_content(model=FLASH, contents=long)
    counted = client.models.count_tokens(model=FLASH, contents=long).total_tokens
    assert info.value.code == 400
    assert f"({counted})" in info.value.message and f"({INPUT_TOKEN_LIMIT})" in \
        info.value.message


def test_an_answer_that_opens_the_next_question_ends_there():
    from labkit.genai.engine import _pending, _stop_at

    assert _stop_at("Question: what next?", []) == 0
    assert _stop_at("Paris.\nQuestion: and Rome?", []) == 6
    assert _stop_at("Paris. The end", ["The"]) == 7
    assert _pending("Paris.\nQues", []) == 5 and _pending("Ques", []) == 4
    assert _pending("Paris", []) == 0 and _pending("Paris. Th", ["The end"]) == 2
