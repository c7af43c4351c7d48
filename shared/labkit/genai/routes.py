"""Vertex AI's generative REST shapes (what google-genai sends), mapped to the engine.

google-genai keeps project and location in its paths only when its base URL ends in
`.googleapis.com` (any other custom base URL makes it send every call to the bare URL, as to
an API gateway), so labkit's GOOGLE_VERTEX_BASE_URL is http://127.0.0.1:PORT/ followed by
the host it stands in for, `aiplatform.googleapis.com`: that prefix is optional here, and so
the canonical /v1/projects/P/locations/L/publishers/google/models/M:generateContent works too.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from datetime import UTC, datetime

from labkit.genai import constrained, model_garden, safety
from labkit.genai.engine import (
    EMBEDDING,
    EMBEDDING_VERSION,
    GENERATIVE,
    INPUT_TOKEN_LIMIT,
    LOCAL_VERSION,
    OUTPUT_TOKEN_LIMIT,
    Config,
    Engine,
    Turn,
    model_kind,
)
from labkit.genai.errors import GenAIError, InvalidArgument, NotLocal
from labkit.services.http import Request, Router, StreamedResponse
from labkit.vertex.errors import VertexError
from labkit.vertex.routes import PARENT, parent_of

PREFIX = r"(?:/aiplatform\.googleapis\.com)?/v1(?:beta1)?"
MODEL = (PREFIX + r"/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
         r"/publishers/google/models/(?P<model>[^/:]+)")

CONFIG_KEYS = {"temperature", "topP", "topK", "candidateCount", "maxOutputTokens",
               "stopSequences", "seed", "presencePenalty", "frequencyPenalty",
               "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig",
               "responseLogprobs", "logprobs", "responseModalities", "mediaResolution",
               "speechConfig", "audioTimestamp", "routingConfig", "modelSelectionConfig",
               "enableAffectiveDialog", "imageConfig"}
REQUEST_KEYS = {"contents", "systemInstruction", "generationConfig", "tools", "toolConfig",
                "safetySettings", "labels", "cachedContent", "model"}


def wrap(handler):
    """The boundary where the engines' GenAIError becomes Vertex AI's google.rpc.Status error
    (this room's routes and the tuning routes)."""
    def run(request: Request):
        try:
            return handler(request)
        except GenAIError as exc:
            raise VertexError(exc.status, exc.message) from None
    return run


def register(router: Router, services) -> None:
    """services: the services process's shared objects (or, before the wiring refactor,
    the Workspace); this room needs neither: its models are packaged."""
    engine = Engine()

    from labkit.genai.rag import routes as rag_routes

    rag = rag_routes.register(router, engine, services)  # RAG Engine, on this embedder
    router.add("POST", MODEL + r":generateContent", wrap(lambda r: _generate(engine, r, rag)))
    router.add("POST", MODEL + r":streamGenerateContent", wrap(lambda r: _stream(engine, r)))
    router.add("POST", MODEL + r":countTokens", wrap(lambda r: _count(engine, r)))
    router.add("POST", MODEL + r":computeTokens", wrap(lambda r: _compute(engine, r)))
    router.add("POST", MODEL + r":predict", wrap(lambda r: _predict(engine, r)))
    router.add("POST", MODEL + r":embedContent", wrap(lambda r: _embed_content(engine, r)))
    garden = model_garden.ModelGarden(services.vertex_store, services.registry)
    router.add("POST", PARENT + r":deploy", lambda r: garden.deploy(parent_of(r), r.json()))
    router.add("GET", PREFIX + r"/publishers/(?:\*|%2A)/models",  # parent="publishers/*"
               lambda r: model_garden.list_models(r.query))
    router.add("GET", PREFIX + r"/(?:projects/[^/]+/locations/[^/]+/)?publishers/google/models"
               r"/(?P<model>[^/:]+)", wrap(lambda r: _get_model(r)))
    router.add("GET", PREFIX + r"/(?:projects/[^/]+/locations/[^/]+/)?publishers/google/models",
               wrap(lambda r: {"publisherModels": [_publisher_model(m)
                                                   for m in GENERATIVE + EMBEDDING]}))

    from labkit.genai.evaluation import routes as evaluation

    evaluation.register(router, engine)  # the judge is the model already loaded here


# ---- requests -> plain values


COUNT_KEYS = {"contents", "systemInstruction", "tools", "generationConfig", "model",
              "instances"}  # CountTokensRequest
COMPUTE_KEYS = {"contents", "model", "instances"}  # ComputeTokensRequest


def _body(request: Request, keys: set[str] = REQUEST_KEYS) -> dict:
    body = request.json()
    unknown = set(body) - keys
    if unknown:
        raise InvalidArgument(f"Invalid JSON payload received. Unknown name "
                              f"\"{sorted(unknown)[0]}\": Cannot find field.")
    return body


def _turns(body: dict) -> list[Turn]:
    contents = body.get("contents") or []
    if not isinstance(contents, list):
        raise InvalidArgument("contents must be a list of Content.")
    turns = []
    for content in contents:
        if not isinstance(content, dict) or not content.get("parts"):
            raise InvalidArgument("Unable to submit request because it has an empty or "
                                  "invalid contents field (each Content needs parts).")
        parts = content["parts"]
        if not isinstance(parts, list) or not all(isinstance(p, dict) and p for p in parts):
            raise InvalidArgument("contents[].parts must be a list of Part objects.")
        for part in parts:
            for key in ("text",):
                if key in part and not isinstance(part[key], str):
                    raise InvalidArgument(f"Invalid value at 'contents[].parts[].{key}': "
                                          f"{json.dumps(part[key])[:60]}")
            for key in ("functionCall", "functionResponse"):
                if key in part and not (isinstance(part[key], dict)
                                        and isinstance(part[key].get("name"), str)):
                    raise InvalidArgument(f"contents[].parts[].{key} needs a name.")
        role = content.get("role", "user")
        if role not in ("user", "model", "function"):
            raise InvalidArgument(f"Please use a valid role: user, model. Got {role!r}.")
        turns.append(Turn("model" if role == "model" else "user", content["parts"]))
    return turns


def _system(body: dict) -> str:
    system = body.get("systemInstruction")
    if not system:
        return ""
    parts = system.get("parts") if isinstance(system, dict) else None
    if not isinstance(parts, list) or not all(isinstance(p, dict) and isinstance(
            p.get("text", ""), str) for p in parts):
        raise InvalidArgument("system_instruction must be a Content with text parts.")
    return "\n".join(p.get("text", "") for p in parts)


def _config(body: dict, model: str) -> Config:
    raw = body.get("generationConfig")
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise InvalidArgument("generation_config must be an object.")
    unknown = set(raw) - CONFIG_KEYS
    if unknown:
        raise InvalidArgument(f"Invalid JSON payload received. Unknown name "
                              f"\"{sorted(unknown)[0]}\" at 'generation_config'.")
    for key in ("responseLogprobs", "logprobs", "responseModalities", "speechConfig",
                "imageConfig", "mediaResolution", "audioTimestamp", "routingConfig",
                "modelSelectionConfig", "enableAffectiveDialog"):
        if raw.get(key) not in (None, False, [], ["TEXT"]):
            raise NotLocal(f"generationConfig.{key}")
    thinking = raw.get("thinkingConfig") or {}
    if not isinstance(thinking, dict):
        raise InvalidArgument("thinking_config must be an object.")
    if thinking.get("includeThoughts") or thinking.get("thinkingBudget") not in (None, 0, -1):
        raise NotLocal("Thinking (thinkingConfig with a budget or includeThoughts): the local "
                       "model does not think")
    c = Config()
    c.temperature = _number(raw, "temperature", c.temperature, 0.0, 2.0)
    c.top_p = _number(raw, "topP", c.top_p, 0.0, 1.0)
    if raw.get("topP") == 0:
        c.top_p = 1e-9  # keeps only the most likely token
    c.top_k = int(_number(raw, "topK", c.top_k, 1, 1000))
    c.candidate_count = int(_number(raw, "candidateCount", 1, 1, 8))
    c.max_output_tokens = int(_number(raw, "maxOutputTokens", c.max_output_tokens, 1,
                                      OUTPUT_TOKEN_LIMIT))
    c.presence_penalty = _number(raw, "presencePenalty", 0.0, -2.0, 2.0)
    c.frequency_penalty = _number(raw, "frequencyPenalty", 0.0, -2.0, 2.0)
    if raw.get("seed") is not None:
        c.seed = int(_number(raw, "seed", 0, -2**63, 2**63)) & 0xFFFFFFFF
    stops = raw.get("stopSequences") or []
    if not isinstance(stops, list) or len(stops) > 5 or \
            not all(isinstance(s, str) for s in stops):
        raise InvalidArgument("stopSequences must be a list of at most 5 strings.")
    c.stop_sequences = stops
    mime = raw.get("responseMimeType", "text/plain")
    if mime not in ("text/plain", "application/json", "text/x.enum"):
        raise InvalidArgument(f"response_mime_type: allowed mimetypes are `text/plain`, "
                              f"`application/json`, `text/x.enum`; got {mime!r}.")
    schema = constrained.normalised(raw.get("responseSchema"))
    if raw.get("responseJsonSchema") is not None:
        raise NotLocal("responseJsonSchema (JSON Schema output; use responseSchema)")
    if schema is not None:
        if mime == "text/plain":
            raise InvalidArgument("response_schema requires response_mime_type "
                                  "`application/json` or `text/x.enum`.")
        constrained.check_schema(schema)
    if mime == "text/x.enum":
        if not schema or "enum" not in schema:
            raise InvalidArgument("`text/x.enum` needs a response_schema with an enum.")
    c.safety_settings = _safety(body)
    c.response_mime_type = mime
    c.response_schema = schema
    return c


def _number(raw: dict, key: str, default, low, high):
    if raw.get(key) is None:
        return default
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidArgument(f"Invalid value for generation_config.{key}: {value!r}")
    try:
        value = float(value)
    except ValueError:
        raise InvalidArgument(f"Invalid value for generation_config.{key}: {value!r}") from None
    if not low <= value <= high:
        # Vertex's wording, field name in camelCase as sent: "Unable to submit request
        # because it has a topK value of 64 but the supported range is from 1 (inclusive)
        # to 41 (exclusive). Update the value and try again." (quoted in
        # https://discuss.ai.google.dev/t/inconsistant-top-k-limit-in-gemini-api-and-vertex-ai/66121)
        raise InvalidArgument(f"Unable to submit request because it has a {key} value of "
                              f"{raw[key]} but the supported range is from {low} (inclusive) "
                              f"to {high} (inclusive). Update the value and try again.")
    return value


def _tools(body: dict) -> tuple[list[dict], str, list[str] | None]:
    declarations = []
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise InvalidArgument("tools must be a list of Tool objects.")
    for tool in tools:
        if not isinstance(tool.get("functionDeclarations", []), list):
            raise InvalidArgument("tools[].function_declarations must be a list.")
        for key in tool:
            if key != "functionDeclarations":
                raise NotLocal(f"The {key} tool (search grounding, code execution, retrieval)")
        for d in tool.get("functionDeclarations") or []:
            if not isinstance(d, dict) or not d.get("name"):
                raise InvalidArgument("tools[].function_declarations[].name: missing field.")
            # google-genai sends a Python function's signature as JSON Schema, under either
            # spelling; it means the same as `parameters`
            raw = d.get("parametersJsonSchema", d.get("parameters_json_schema"))
            if raw is not None:
                if d.get("parameters"):
                    raise InvalidArgument("function_declarations: parameters and "
                                          "parameters_json_schema are mutually exclusive.")
                d = {k: v for k, v in d.items() if k not in (
                    "parametersJsonSchema", "parameters_json_schema", "responseJsonSchema",
                    "response_json_schema")}
                d["parameters"] = constrained.from_json_schema(raw)
            if d.get("parameters"):
                d = {**d, "parameters": constrained.normalised(d["parameters"])}
                constrained.check_schema(d["parameters"], f"function_declarations[{d['name']}]"
                                                          f".parameters")
            declarations.append(d)
    tool_config = body.get("toolConfig")
    tool_config = {} if tool_config is None else tool_config
    if not isinstance(tool_config, dict):
        raise InvalidArgument("tool_config must be an object.")
    config = tool_config.get("functionCallingConfig")
    config = {} if config is None else config
    if not isinstance(config, dict) or not isinstance(config.get("allowedFunctionNames", []),
                                                      list):
        raise InvalidArgument("tool_config.function_calling_config must be an object.")
    mode = config.get("mode", "AUTO")
    if mode not in ("AUTO", "ANY", "NONE", "MODE_UNSPECIFIED", "VALIDATED"):
        raise InvalidArgument(f"Invalid value at 'tool_config.function_calling_config.mode': "
                              f"{mode!r}")
    allowed = config.get("allowedFunctionNames")
    if allowed and mode != "ANY":
        raise InvalidArgument("allowed_function_names is only allowed in mode ANY.")
    unknown = [n for n in allowed or [] if n not in {d["name"] for d in declarations}]
    if unknown:
        raise InvalidArgument(f"allowed_function_names: {unknown[0]!r} is not declared.")
    return declarations, {"MODE_UNSPECIFIED": "AUTO", "VALIDATED": "AUTO"}.get(mode, mode), \
        allowed


def _safety(body: dict) -> dict:
    """category -> safety.Setting; the local classifier rates prompts and answers."""
    return safety.parse_settings(body.get("safetySettings"))


def _generative(request: Request) -> str:
    model = request.params["model"]
    if model_kind(model) != "generative":
        raise InvalidArgument(f"{model} is an embedding model: use embed_content.")
    return model


def _parsed(request: Request, grounded=None) -> tuple[str, tuple]:
    """The model and engine.generate's arguments; every malformed field is a 400 here.
    grounded: a retrieval tool's chunks (genai.rag.grounding), put ahead of the prompt."""
    model = _generative(request)
    body = _body(request)
    if body.get("cachedContent"):
        raise NotLocal("Context caching (cachedContent)")
    turns = _turns(body)
    config = _config(body, model)
    if grounded is not None:
        body["tools"] = grounded.other_tools
    tools, mode, allowed = _tools(body)
    system = _system(body) if grounded is None else grounded.preamble(_system(body))
    return model, (turns, config, system, tools, mode, allowed)


def _run(engine: Engine, request: Request):
    model, args = _parsed(request)
    return model, engine.generate(*args)


def _usage(prompt: int, candidates: int) -> dict:
    usage = {"promptTokenCount": prompt, "totalTokenCount": prompt + candidates,
             "trafficType": "ON_DEMAND",
             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
    if candidates:
        usage["candidatesTokenCount"] = candidates
        usage["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": candidates}]
    return usage


def _response(model: str, result: dict) -> dict:
    candidates = []
    for c in result["candidates"]:
        candidate = {"content": {"role": "model", "parts": c["parts"]}} if c["parts"] else {}
        candidates.append({**candidate, "finishReason": c["finish_reason"], "index": c["index"],
                           "safetyRatings": c["safety_ratings"]})  # blocked: no content
    total = sum(c["tokens"] for c in result["candidates"])
    out = {"candidates": candidates, "usageMetadata": _usage(result["prompt_tokens"], total),
           "modelVersion": LOCAL_VERSION, "createTime": _now(),
           "responseId": uuid.uuid4().hex[:22]}
    if "prompt_feedback" in result:  # a blocked prompt: Vertex answers no candidates
        del out["candidates"]
        out["promptFeedback"] = result["prompt_feedback"]
    return out


def _generate(engine: Engine, request: Request, rag=None) -> dict:
    from labkit.genai.rag.grounding import Grounded

    grounded = Grounded.of(rag, request.json())  # None without a retrieval tool
    if grounded is None:
        model, result = _run(engine, request)
        return _response(model, result)
    model, args = _parsed(request, grounded)
    response = _response(model, engine.generate(*args))
    grounded.annotate(response)
    return response


def _stream(engine: Engine, request: Request) -> StreamedResponse:
    """Vertex's streamGenerateContent: server-sent events with alt=sse (what google-genai
    asks for), else one JSON array sent as it grows. Text goes out as the model writes
    it, one event per piece the engine lets go of; the last event carries finishReason
    and usageMetadata (and any other candidates, whole). A request that is refused before
    its first event is an ordinary JSON error; a failure after it is an error event, which
    google-genai raises as an APIError."""
    if any(isinstance(t, dict) and "retrieval" in t for t in request.json().get("tools") or []):
        raise NotLocal("Streaming with a retrieval tool (generate_content grounds locally)")
    model, args = _parsed(request)  # malformed requests fail here, before any byte
    sse = request.arg("alt") == "sse"

    def frames():
        for i, event in enumerate(_events(engine, model, args)):
            data = json.dumps(event)
            yield (f"data: {data}\r\n\r\n" if sse else ("[" if i == 0 else ",\r\n") + data
                   ).encode()
        if not sse:
            yield b"]"

    return StreamedResponse(frames(), {"Content-Type": "text/event-stream" if sse
                                       else "application/json; charset=UTF-8"})


class _Cancelled(Exception):
    """The client went away: the generation stops at its next piece of text."""


def _events(engine: Engine, model: str, args: tuple):
    """The stream's events, while engine.generate runs in a worker thread (it reports
    text through a callback; the events are a generator the HTTP layer pulls from)."""
    pieces: queue.Queue = queue.Queue()
    gone = threading.Event()

    def on_text(text: str) -> None:
        if gone.is_set():
            raise _Cancelled
        pieces.put(("text", text))

    def work() -> None:
        try:
            pieces.put(("done", engine.generate(*args, on_text=on_text)))
        except BaseException as exc:  # noqa: BLE001 - handed to the stream
            pieces.put(("error", exc))

    threading.Thread(target=work, name="genai-stream", daemon=True).start()
    created, response_id, sent, started = _now(), uuid.uuid4().hex[:22], [], False
    try:
        while True:
            kind, value = pieces.get()
            if kind == "text":
                sent.append(value)
                started = True
                yield {"candidates": [{"content": {"role": "model", "parts": [{"text": value}]},
                                       "index": 0}],
                       "modelVersion": LOCAL_VERSION, "createTime": created,
                       "responseId": response_id}
                continue
            if kind == "error":
                if not isinstance(value, GenAIError):
                    raise value  # a bug: the HTTP layer's policy (501, or a cut stream)
                if not started:
                    raise VertexError(value.status, value.message) from None
                yield VertexError(value.status, value.message).body
                return
            final = _response(model, value)
            final.update(createTime=created, responseId=response_id)
            # the first candidate's text went out already: send the rest (none when the
            # safety settings blocked the answer: it ends with finishReason SAFETY)
            if sent and "content" in final["candidates"][0]:
                text = "".join(sent)
                first = final["candidates"][0]["content"]["parts"][0]
                first["text"] = first["text"][len(text):]
            yield final
            return
    finally:
        gone.set()


def _count(engine: Engine, request: Request) -> dict:
    model = _generative(request)
    body = _body(request, COUNT_KEYS)
    turns = _turns(body)
    tools, _, _ = _tools(body)
    _config(body, model)
    if not turns:
        raise InvalidArgument("Unable to submit request because it has an empty contents "
                              "field. Add a contents field and try again.")
    total = engine.count(turns, _system(body), tools)
    chars = sum(len(p.get("text", "").replace(" ", "")) for t in turns for p in t.parts)
    return {"totalTokens": total, "totalBillableCharacters": chars,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}


def _compute(engine: Engine, request: Request) -> dict:
    import base64

    _generative(request)
    body = _body(request, COMPUTE_KEYS)
    turns = _turns(body)
    if not turns:
        raise InvalidArgument("contents: at least one Content is required.")
    engine.model  # noqa: B018
    info = []
    for role, ids in engine.turn_tokens(turns):
        pieces = [engine.tokenizer.piece(i).replace("\u2581", " ").encode() for i in ids]
        info.append({"tokenIds": [str(i) for i in ids], "role": role,
                     "tokens": [base64.b64encode(p).decode() for p in pieces]})
    return {"tokensInfo": info}


# ---- embeddings

TASK_TYPES = {"RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY", "CLASSIFICATION",
              "CLUSTERING", "QUESTION_ANSWERING", "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY",
              "TASK_TYPE_UNSPECIFIED"}


def _embedding_model(request: Request) -> str:
    model = request.params["model"]
    if model_kind(model) != "embedding":
        raise InvalidArgument(f"{model} does not support embeddings; use "
                              f"{', '.join(EMBEDDING)}.")
    return model


def _predict(engine: Engine, request: Request) -> dict:
    _embedding_model(request)
    body = request.json()
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise InvalidArgument("instances: at least one instance is required.")
    if len(instances) > 250:
        raise InvalidArgument(f"{len(instances)} instances are more than the limit of 250.")
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidArgument("parameters must be an object.")
    texts = []
    for instance in instances:
        content = instance.get("content") if isinstance(instance, dict) else None
        if not isinstance(content, str):
            raise InvalidArgument("Each instance needs a string content.")
        task = instance.get("task_type", instance.get("taskType"))
        if task is not None and task not in TASK_TYPES:
            raise InvalidArgument(f"Invalid task_type {task!r}; use one of "
                                  f"{sorted(TASK_TYPES)}.")
        title = instance.get("title")
        if title and task != "RETRIEVAL_DOCUMENT":
            raise InvalidArgument("title is only valid with task_type RETRIEVAL_DOCUMENT.")
        texts.append(f"{title}\n{content}" if title else content)
    vectors = engine.embed(texts, _dimensionality(params.get("outputDimensionality")),
                           bool(params.get("autoTruncate", True)))
    return {"predictions": [{"embeddings": {"values": v["values"], "statistics": {
        "token_count": v["token_count"], "truncated": v["truncated"]}}} for v in vectors],
        "metadata": {"billableCharacterCount": sum(len(t) for t in texts)},
        "deployedModelId": EMBEDDING_VERSION}


def _embed_content(engine: Engine, request: Request) -> dict:
    _embedding_model(request)
    body = request.json()
    content = body.get("content") or {}
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not all(isinstance(p, dict) and isinstance(
            p.get("text", ""), str) for p in parts):
        raise InvalidArgument("content must be a Content with text parts.")
    text = "\n".join(p.get("text", "") for p in parts)
    if not text:
        raise InvalidArgument("content: a text part is required.")
    vector = engine.embed([text], _dimensionality(body.get("outputDimensionality")),
                          bool(body.get("autoTruncate", True)))[0]
    return {"embedding": {"values": vector["values"]},
            "usageMetadata": {"promptTokenCount": vector["token_count"]},
            "truncated": vector["truncated"]}


def _dimensionality(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or \
            not str(value).lstrip("-").isdigit():
        raise InvalidArgument(f"Invalid value for outputDimensionality: {value!r}")
    return int(value)


# ---- models


def _publisher_model(model: str) -> dict:
    kind = model_kind(model)
    extra = {}
    if kind == "embedding":  # what vertexai.language_models.TextEmbeddingModel looks up
        extra["predictSchemata"] = {"instanceSchemaUri": "gs://google-cloud-aiplatform/schema/"
                                                         "predict/instance/text_embedding_"
                                                         "1.0.0.yaml"}
    return {"name": f"publishers/google/models/{model}", "versionId": "default", **extra,
            "publisherModelTemplate": "projects/{user-project}/locations/{location}/"
                                      f"publishers/google/models/{model}",
            "openSourceCategory": "PROPRIETARY", "launchStage": "GA",
            "displayName": model,
            "description": f"Answered locally by "
                           f"{LOCAL_VERSION if model in GENERATIVE else EMBEDDING_VERSION}; "
                           f"input token limit {INPUT_TOKEN_LIMIT}, output token limit "
                           f"{OUTPUT_TOKEN_LIMIT}."}


def _get_model(request: Request) -> dict:
    model = request.params["model"]
    hugging_face = request.arg("isHuggingFaceModel") == "true"
    if hugging_face or "@" in model or model == model_garden.FAMILY:  # an open model
        model_garden.resolve(f"google/{model}" if hugging_face else f"google/models/{model}",
                             hugging_face)
        return model_garden.publisher_model()
    return _publisher_model(model)


def _now() -> str:
    return datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
