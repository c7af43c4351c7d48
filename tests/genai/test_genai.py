"""The local Gen AI service through the real google-genai client (Vertex mode).

One model load per services process; every generation is a few tokens, so the module
runs in well under a minute once the weights are prepared (the very first load
dequantises the GGUF: about 40 s on two cores, then cached)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("local_env")
FLASH = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def client(local_env):
    from google import genai

    return genai.Client()  # no arguments: labkit.start() set the environment


def cfg(**kw):
    from google.genai import types

    kw.setdefault("max_output_tokens", 4)
    return types.GenerateContentConfig(**kw)


def test_client_needs_no_arguments(client):
    api = client._api_client
    assert api.vertexai and api.project and api.location == "us-central1"
    assert api._http_options.base_url.startswith("http://127.0.0.1:")


def test_generate_counts_real_tokens_and_names_the_local_model(client):
    story = "Tell me a long story about a dragon."
    r = client.models.generate_content(model=FLASH, contents=story, config=cfg(temperature=0))
    assert r.text and r.candidates[0].finish_reason.name == "MAX_TOKENS"
    u = r.usage_metadata
    assert u.candidates_token_count == 4
    assert u.prompt_token_count == client.models.count_tokens(
        model=FLASH, contents=story).total_tokens
    assert u.total_token_count == u.prompt_token_count + 4
    assert "gemma-3-270m" in r.model_version


def test_a_short_answer_ends_with_stop(client):
    r = client.models.generate_content(model=FLASH, contents="What is the capital of France?",
                                       config=cfg(temperature=0, max_output_tokens=12))
    assert "Paris" in r.text and r.candidates[0].finish_reason.name == "STOP"


def test_the_canonical_model_ids_answer(client):
    for model in ("gemini-2.5-pro", "gemini-2.0-flash-001"):
        r = client.models.generate_content(model=model, contents="Hi",
                                           config=cfg(max_output_tokens=1, temperature=0))
        assert r.usage_metadata.candidates_token_count == 1


def test_same_seed_same_answer_and_candidates(client):
    c = cfg(temperature=1.0, seed=7, max_output_tokens=6)
    a = client.models.generate_content(model=FLASH, contents="Write a word:", config=c)
    b = client.models.generate_content(model=FLASH, contents="Write a word:", config=c)
    assert a.text == b.text
    two = client.models.generate_content(model=FLASH, contents="Write a word:",
                                         config=cfg(candidate_count=2, temperature=1.0, seed=1))
    assert len(two.candidates) == 2 and two.usage_metadata.candidates_token_count == 8


def test_stop_sequences_and_system_instruction(client):
    greedy = client.models.generate_content(model=FLASH, contents="Count: one, two,",
                                            config=cfg(temperature=0, max_output_tokens=8))
    stop = greedy.text.strip()[2:4] or greedy.text[-1]
    cut = client.models.generate_content(model=FLASH, contents="Count: one, two,",
                                         config=cfg(temperature=0, max_output_tokens=8,
                                                    stop_sequences=[stop]))
    assert cut.text == greedy.text[:greedy.text.find(stop)]
    assert cut.candidates[0].finish_reason.name == "STOP"
    plain = client.models.generate_content(model=FLASH, contents="Hi", config=cfg(
        max_output_tokens=1, temperature=0))
    system = client.models.generate_content(model=FLASH, contents="Hi", config=cfg(
        max_output_tokens=1, temperature=0, system_instruction="Answer in French."))
    assert system.usage_metadata.prompt_token_count > plain.usage_metadata.prompt_token_count


def test_json_output_always_follows_the_schema(client):
    schema = {"type": "OBJECT", "properties": {
        "sentiment": {"type": "STRING", "enum": ["positive", "negative", "neutral"]},
        "stars": {"type": "INTEGER"}, "summary": {"type": "STRING"},
        "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 2}},
        "required": ["sentiment", "stars", "summary"]}
    r = client.models.generate_content(
        model=FLASH, contents="Review: the coffee was great, five stars.",
        config=cfg(response_mime_type="application/json", response_schema=schema,
                   max_output_tokens=40, temperature=0.7, seed=3))
    value = json.loads(r.text)
    assert value["sentiment"] in ("positive", "negative", "neutral")
    assert isinstance(value["stars"], int) and isinstance(value["summary"], str)
    assert isinstance(value["tags"], list) and len(value["tags"]) <= 2
    assert r.parsed is None or isinstance(r.parsed, dict)


def test_pydantic_schemas_and_enum_mime_type(client):
    import enum

    import pydantic

    class Mood(enum.Enum):
        HAPPY = "happy"
        SAD = "sad"

    class Ticket(pydantic.BaseModel):
        mood: Mood
        urgent: bool
        minutes: int

    r = client.models.generate_content(model=FLASH, contents="My order is late!", config=cfg(
        response_mime_type="application/json", response_schema=list[Ticket],
        max_output_tokens=30, seed=2))
    assert isinstance(r.parsed, list) and all(isinstance(t, Ticket) for t in r.parsed)
    label = client.models.generate_content(model=FLASH, contents="I lost my keys", config=cfg(
        response_mime_type="text/x.enum", response_schema=Mood))
    assert label.text in ("happy", "sad") and isinstance(label.parsed, Mood)


def test_function_calling_round_trip(client):
    from google.genai import types

    weather = types.FunctionDeclaration(
        name="get_weather", description="Current weather in a city",
        parameters={"type": "OBJECT", "properties": {
            "city": {"type": "STRING"},
            "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]})
    tools = [types.Tool(function_declarations=[weather])]
    any_mode = types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
        mode="ANY"))
    question = "What is the weather in Paris?"
    r = client.models.generate_content(model=FLASH, contents=question, config=cfg(
        tools=tools, tool_config=any_mode, max_output_tokens=16, temperature=0))
    call = r.function_calls[0]
    assert call.name == "get_weather" and set(call.args) == {"city", "unit"}
    assert call.args["unit"] in ("celsius", "fahrenheit")
    follow = client.models.generate_content(model=FLASH, contents=[
        types.Content(role="user", parts=[types.Part(text=question)]),
        r.candidates[0].content,
        types.Content(role="user", parts=[types.Part.from_function_response(
            name="get_weather", response={"temperature": 21, "sky": "clear"})])],
        config=cfg(tools=tools, max_output_tokens=4, temperature=0))
    assert follow.text and not follow.function_calls
    auto = client.models.generate_content(model=FLASH, contents="Tell me a joke.", config=cfg(
        tools=tools, max_output_tokens=4, temperature=0))
    assert not auto.function_calls and auto.text
    called = client.models.generate_content(model=FLASH, contents="Is it raining in Rome?",
                                            config=cfg(tools=tools, max_output_tokens=16,
                                                       temperature=0))
    assert called.function_calls[0].name == "get_weather"


def test_stream_and_chat(client):
    chunks = list(client.models.generate_content_stream(
        model=FLASH, contents="Once upon a time", config=cfg(temperature=0,
                                                             max_output_tokens=9)))
    whole = client.models.generate_content(model=FLASH, contents="Once upon a time",
                                           config=cfg(temperature=0, max_output_tokens=9))
    assert len(chunks) >= 2 and "".join(c.text or "" for c in chunks) == whole.text
    assert chunks[-1].usage_metadata.candidates_token_count == 9
    chat = client.chats.create(model=FLASH, config=cfg(temperature=0, max_output_tokens=3))
    chat.send_message("Hello")
    chat.send_message("And again")
    assert len(chat.get_history()) == 4


def test_compute_tokens_and_models(client):
    info = client.models.compute_tokens(model=FLASH, contents="Hello world").tokens_info[0]
    assert len(info.token_ids) == 2 and b"".join(info.tokens) == b"Hello world"
    model = client.models.get(model=FLASH)
    assert model.name.endswith("models/gemini-2.5-flash")
    names = [m.name for m in client.models.list()]
    assert any(n.endswith("text-embedding-005") for n in names)


def test_embeddings_mean_something(client):
    from google.genai import types

    texts = ["How do I reset my password?", "I forgot my password and need a new one.",
             "The penguin population on the island grew last year."]
    r = client.models.embed_content(model="text-embedding-005", contents=texts)
    v = np.array([e.values for e in r.embeddings])
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    small = client.models.embed_content(
        model="gemini-embedding-001", contents="hello",
        config=types.EmbedContentConfig(output_dimensionality=64,
                                        task_type="RETRIEVAL_QUERY"))
    assert len(small.embeddings[0].values) == 64
    assert abs(np.linalg.norm(small.embeddings[0].values) - 1) < 1e-5


@pytest.mark.parametrize("call, status, words", [
    (lambda c: c.models.generate_content(model="gemini-9-ultra", contents="x"), 404,
     "was not found"),
    (lambda c: c.models.generate_content(model=FLASH, contents=[{"role": "user", "parts": []}]),
     400, "empty or invalid contents"),
    (lambda c: c.models.generate_content(model=FLASH, contents="x",
                                         config=cfg(temperature=3)), 400, "temperature"),
    (lambda c: c.models.generate_content(model=FLASH, contents="x", config=cfg(
        response_mime_type="application/json",
        response_schema={"type": "OBJECT", "properties": {}})), 400, "non-empty"),
    (lambda c: c.models.generate_content(model=FLASH, contents="word " * 9000), 400,
     "exceeds the maximum number of tokens"),
    (lambda c: c.models.embed_content(model="text-embedding-005", contents="x", config={
        "output_dimensionality": 4096}), 400, "384"),
])
def test_vertex_errors(client, call, status, words):
    from google.genai import errors

    with pytest.raises(errors.APIError) as info:
        call(client)
    assert info.value.code == status and words in info.value.message


def test_malformed_requests_get_a_4xx(local_env):
    import requests

    token = (local_env.workspace / "token").read_text().strip()
    base = (f"{local_env.endpoint}/aiplatform.googleapis.com/v1beta1/projects/"
            f"{local_env.project}/locations/us-central1/publishers/google/models/")
    bodies = [b"{", b"[]", b"5", b'{"contents": "x"}', b'{"contents": [{"parts": "x"}]}',
              b'{"contents": [{"parts": [{"text": 5}]}]}', b'{"contents": [5]}',
              b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": []}',
              b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"seed": "a"}}',
              b'{"contents": [{"parts": [{"text": "x"}]}], "tools": [5]}',
              b'{"contents": [{"parts": [{"text": "x"}]}], "toolConfig": 5}',
              b'{"contents": [{"parts": [{"text": "x"}]}], "systemInstruction": 5}',
              b'{"contents": [{"parts": [{"text": "x"}]}], "safetySettings": 5}',
              b'{"contents": [{"parts": [{"functionCall": 5}]}]}',
              b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": '
              b'{"responseMimeType": "application/json", "responseSchema": 5}}',
              b'{"instances": 5}', b'{"instances": [{"content": 5}]}',
              b'{"instances": [{"content": "x"}], "parameters": {"outputDimensionality": "z"}}',
              b'{"content": 5}', b'{"unknownField": 1}']
    methods = ["gemini-2.5-flash:generateContent", "gemini-2.5-flash:streamGenerateContent",
               "gemini-2.5-flash:countTokens", "gemini-2.5-flash:computeTokens",
               "text-embedding-005:predict", "text-embedding-005:embedContent",
               "nope-model:generateContent"]
    session = requests.Session()
    for method in methods:
        for body in bodies:
            r = session.post(base + method, data=body, timeout=60,
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": "application/json"})
            assert 400 <= r.status_code < 500, (method, body, r.status_code, r.text[:200])
            assert r.json()["error"]["status"] in ("INVALID_ARGUMENT", "NOT_FOUND"), r.text


def test_the_older_vertex_ai_sdk_reaches_the_same_models(local_env):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both modules are deprecated in favour of google-genai
        from vertexai.generative_models import GenerationConfig, GenerativeModel
        from vertexai.language_models import TextEmbeddingModel

        model = GenerativeModel(FLASH)
        r = model.generate_content("What is the capital of Japan?", generation_config=
                                   GenerationConfig(max_output_tokens=6, temperature=0))
        assert r.text and r.usage_metadata.prompt_token_count > 0
        assert model.count_tokens("hello").total_tokens > 0
        vectors = TextEmbeddingModel.from_pretrained("text-embedding-005").get_embeddings(
            ["hello world"])
        assert len(vectors[0].values) == 384 and vectors[0].statistics.token_count == 4


def test_a_python_function_as_a_tool_gets_its_arguments(client):
    """google-genai sends a Python function's signature as parameters_json_schema (JSON
    Schema, snake_case key); automatic function calling then runs the function."""
    seen = []

    def get_order_status(order_id: int) -> dict:
        """Look up the delivery status of an order by its number."""
        seen.append(order_id)
        return {"order_id": order_id, "status": "shipped"}

    r = client.models.generate_content(
        model=FLASH, contents="Where is my order 4512?",
        config=cfg(tools=[get_order_status], max_output_tokens=8, temperature=0))
    assert seen and isinstance(seen[0], int)
    assert r.automatic_function_calling_history


def test_answers_never_contain_markup_tokens(client):
    texts = [client.models.generate_content(
        model=FLASH, contents="Name a fruit.",
        config=cfg(temperature=1.5, seed=seed, max_output_tokens=8)).text or ""
        for seed in (42, 43, 44)]
    assert not any("<start_of_image>" in t or "<unused" in t for t in texts), texts
