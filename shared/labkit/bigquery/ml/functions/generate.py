"""ML.GENERATE_EMBEDDING and ML.GENERATE_TEXT over a remote model (labkit.bigquery.ml.remote),
answered by the local Vertex AI. A row that the model refuses (empty or NULL input, a
blocked prompt, an input over the token limit) gets its reason in the status column and
NULL results; the query itself succeeds, as in BigQuery.

Docs:
- ML.GENERATE_EMBEDDING: https://cloud.google.com/bigquery/docs/reference/standard-sql/
  bigqueryml-syntax-generate-embedding (input column `content`; STRUCT(flatten_json_output,
  task_type, output_dimensionality); columns ml_generate_embedding_result ARRAY<FLOAT64>,
  ml_generate_embedding_statistics JSON, ml_generate_embedding_status STRING ('' on success);
  with flatten_json_output FALSE the result is the model's JSON answer).
- ML.GENERATE_TEXT: https://cloud.google.com/bigquery/docs/reference/standard-sql/
  bigqueryml-syntax-generate-text (input column `prompt`; STRUCT(max_output_tokens,
  temperature, top_p, top_k, flatten_json_output, stop_sequences,
  ground_with_google_search); flattened: ml_generate_text_llm_result STRING,
  ml_generate_text_rai_result STRING, ml_generate_text_status STRING; otherwise
  ml_generate_text_result JSON and ml_generate_text_status).
Ranges: max_output_tokens [1, 8192], top_p [0.0, 1.0] and top_k [1, 40] as the reference
gives them; temperature [0.0, 2.0], Gemini's range (bigframes.bigquery.ml.generate_text's
docstring still says [0.0, 1.0], the PaLM models' range).
"""

from __future__ import annotations

import json

import pyarrow as pa

from labkit.bigquery.ml.errors import MLError, not_local
from labkit.bigquery.ml.functions.common import require_input, with_inputs
from labkit.bigquery.vertex_ai import VertexCallError

TASK_TYPES = ("RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY", "CLASSIFICATION",
              "CLUSTERING", "QUESTION_ANSWERING", "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY")
BATCH = 250  # instances per Vertex AI predict call (its limit)


def _settings(call, allowed: set[str]) -> dict:
    unknown = set(call.settings) - allowed
    if unknown:
        raise MLError(f"Unknown argument in STRUCT of {call.name}: {sorted(unknown)[0]}; "
                      f"expected {', '.join(sorted(allowed))}")
    return call.settings


def _bool(settings: dict, name: str, default: bool) -> bool:
    value = settings.get(name, default)
    if not isinstance(value, bool):
        raise MLError(f"{name} must be a BOOL value, got {value!r}")
    return value


def _number(settings: dict, name: str, low, high, integer: bool):
    value = settings.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (integer and not isinstance(value, int)):
        raise MLError(f"{name} must be {'an INT64' if integer else 'a FLOAT64'} value, "
                      f"got {value!r}")
    if not low <= value <= high:
        raise MLError(f"{name} must be in the range [{low}, {high}], got {value}")
    return value


def _input_texts(call, model, run_query, column: str, kind: str) -> tuple[pa.Table, list]:
    if model.model_type != f"remote_{kind}":
        wanted = "an embedding model (ENDPOINT = 'text-embedding-005', ...)" \
            if kind == "embedding" else "a Gemini model (ENDPOINT = 'gemini-2.5-flash', ...)"
        raise MLError(f"{call.name} needs a remote model over {wanted}; "
                      f"{call.ref} is not one")
    table = run_query(require_input(call))
    if column not in table.column_names:
        raise MLError(f"{call.name}: the input must have a column named {column}: name the "
                      f"column {column}, or alias one in the query (SELECT text AS {column})")
    field = table.schema.field(column).type
    if not (pa.types.is_string(field) or pa.types.is_large_string(field)):
        raise MLError(f"{call.name}: column {column} must be STRING, not {field}")
    return table, table.column(column).to_pylist()


def generate_embedding(model, call, run_query, vertex, project: str) -> pa.Table:
    settings = _settings(call, {"flatten_json_output", "task_type", "output_dimensionality"})
    flatten = _bool(settings, "flatten_json_output", True)
    table, answers, status = embeddings(model, call, run_query, vertex, project, settings)
    if flatten:
        columns = {
            "ml_generate_embedding_result": _vectors(answers),
            "ml_generate_embedding_statistics": _statistics(answers),
            "ml_generate_embedding_status": pa.array(status, pa.string())}
    else:
        columns = {"ml_generate_embedding_result": pa.array(
            [json.dumps(a) if a else None for a in answers], pa.json_()),
            "ml_generate_embedding_status": pa.array(status, pa.string())}
    return with_inputs(columns, table)


def ai_generate_embedding(model, call, run_query, vertex, project: str) -> pa.Table:
    """AI.GENERATE_EMBEDDING over a text embedding model: columns embedding, statistics,
    status, then the input's (https://cloud.google.com/bigquery/docs/reference/standard-sql/
    bigqueryml-syntax-ai-generate-embedding: STRUCT(task_type, output_dimensionality))."""
    settings = _settings(call, {"task_type", "output_dimensionality"})
    table, answers, status = embeddings(model, call, run_query, vertex, project, settings)
    return with_inputs({"embedding": _vectors(answers), "statistics": _statistics(answers),
                        "status": pa.array(status, pa.string())}, table)


def _vectors(answers) -> pa.Array:
    return pa.array([a["embeddings"]["values"] if a else None for a in answers],
                    pa.list_(pa.float64()))


def _statistics(answers) -> pa.Array:
    return pa.array([json.dumps(a["embeddings"]["statistics"]) if a else None
                     for a in answers], pa.json_())


def embeddings(model, call, run_query, vertex, project: str, settings: dict):
    """(input table, the model's answer per row or None, status per row)."""
    task = settings.get("task_type")
    if task is not None and task not in TASK_TYPES:
        raise MLError(f"Invalid task_type '{task}': use one of {', '.join(TASK_TYPES)}")
    dims = _number(settings, "output_dimensionality", 1, 3072, True)
    table, texts = _input_texts(call, model, run_query, "content", "embedding")
    answers: list[dict | None] = [None] * len(texts)
    status = [""] * len(texts)
    todo = []
    for i, text in enumerate(texts):
        if text is None or not text.strip():
            status[i] = "The content is NULL or empty: there is nothing to embed."
        else:
            todo.append(i)
    parameters = {"outputDimensionality": dims} if dims else {}
    for start in range(0, len(todo), BATCH):
        rows = todo[start:start + BATCH]
        try:
            _embed(vertex, model, project, texts, rows, task, parameters, answers)
        except VertexCallError:   # one row the model refuses: ask again row by row
            for i in rows:
                try:
                    _embed(vertex, model, project, texts, [i], task, parameters, answers)
                except VertexCallError as exc:
                    status[i] = f"A non-retryable error occurred: {exc.message}"
    return table, answers, status


def _embed(vertex, model, project, texts, rows, task, parameters, answers) -> None:
    instances = [{"content": texts[i], **({"task_type": task} if task else {})} for i in rows]
    body = {"instances": instances, **({"parameters": parameters} if parameters else {})}
    predictions = vertex.call(model, project, "predict", body)["predictions"]
    for i, prediction in zip(rows, predictions, strict=True):
        answers[i] = prediction


def generate_text(model, call, run_query, vertex, project: str) -> pa.Table:
    settings = _settings(call, {"max_output_tokens", "temperature", "top_p", "top_k",
                                "flatten_json_output", "stop_sequences",
                                "ground_with_google_search", "safety_settings",
                                "request_type"})
    if _bool(settings, "ground_with_google_search", False):
        raise not_local("ML.GENERATE_TEXT with ground_with_google_search (grounding with "
                        "Google Search needs Google's search index)")
    flatten = _bool(settings, "flatten_json_output", False)
    config = generation_config(call, settings)
    table, prompts = _input_texts(call, model, run_query, "prompt", "generative")
    answers, status = [], []
    for prompt in prompts:
        answer, state = generate_one(
            lambda body: vertex.call(model, project, "generateContent", body),
            prompt, {"generationConfig": config})
        answers.append(answer)
        status.append(state)
    if flatten:
        texts, rai = [], []
        for answer in answers:
            candidate = ((answer or {}).get("candidates") or [None])[0]
            texts.append(answer_text(answer))
            rai.append(json.dumps(candidate.get("safetyRatings", [])) if candidate else None)
        columns = {"ml_generate_text_llm_result": pa.array(texts, pa.string()),
                   "ml_generate_text_rai_result": pa.array(rai, pa.string()),
                   "ml_generate_text_status": pa.array(status, pa.string())}
    else:
        columns = {"ml_generate_text_result": pa.array(
            [json.dumps(a) if a else None for a in answers], pa.json_()),
            "ml_generate_text_status": pa.array(status, pa.string())}
    return with_inputs(columns, table)


def generation_config(call, settings: dict) -> dict:
    """The STRUCT's generation settings as a generateContent generationConfig."""
    if settings.get("safety_settings") is not None:
        raise not_local(f"{call.name} with safety_settings")
    check_request_type(settings.get("request_type"))
    config = {"maxOutputTokens": _number(settings, "max_output_tokens", 1, 8192, True) or 128,
              "temperature": _number(settings, "temperature", 0.0, 2.0, False),
              "topP": _number(settings, "top_p", 0.0, 1.0, False),
              "topK": _number(settings, "top_k", 1, 40, True)}
    stops = settings.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise MLError("stop_sequences must be an ARRAY<STRING>")
        config["stopSequences"] = stops
    return {k: v for k, v in config.items() if v is not None}


def check_request_type(request_type) -> None:
    """SHARED and UNSPECIFIED use the dynamic shared quota; DEDICATED only Provisioned
    Throughput, and "the function returns an invalid query error if Provisioned Throughput
    quota isn't available" (AI.GENERATE_DOUBLE reference, REQUEST_TYPE): none is bought
    locally."""
    if request_type is None or str(request_type).upper() in ("SHARED", "UNSPECIFIED"):
        return
    if str(request_type).upper() == "DEDICATED":
        raise MLError("request_type DEDICATED needs purchased Provisioned Throughput quota, and "
                      "this project has none (the local Vertex AI has no Provisioned "
                      "Throughput): use SHARED or UNSPECIFIED")
    raise MLError(f"Invalid request_type '{request_type}': use DEDICATED, SHARED or "
                  "UNSPECIFIED")


def generate_one(generate, prompt, request: dict) -> tuple[dict | None, str]:
    """(the generateContent answer or None, the row's status) for one prompt; `generate`
    POSTs a request body. A failed row is a status, never a failed query."""
    if prompt is None or not prompt.strip():
        return None, "The prompt is NULL or empty."
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}], **request}
    try:
        answer = generate(body)
    except VertexCallError as exc:
        return None, f"A non-retryable error occurred: {exc.message}"
    blocked = (answer.get("promptFeedback") or {}).get("blockReason")
    return answer, f"The prompt was blocked: {blocked}" if blocked else ""


def answer_text(answer: dict | None) -> str | None:
    candidate = ((answer or {}).get("candidates") or [None])[0]
    if not candidate:
        return None
    parts = (candidate.get("content") or {}).get("parts") or []
    return "".join(p.get("text", "") for p in parts)


HANDLERS = {"GENERATE_EMBEDDING": generate_embedding, "GENERATE_TEXT": generate_text}
