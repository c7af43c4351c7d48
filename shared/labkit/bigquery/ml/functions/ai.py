"""BigQuery's AI.* generative functions over the local Vertex AI.

- AI.GENERATE_EMBEDDING(MODEL m, TABLE t | (query), STRUCT(task_type, output_dimensionality)):
  the input and columns embedding ARRAY<FLOAT64>, statistics JSON, status STRING
  (https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-ai-generate-embedding).
- AI.GENERATE_TABLE(MODEL m, TABLE t | (query), STRUCT(output_schema, max_output_tokens,
  temperature, top_p, stop_sequences, safety_settings, request_type)): one column per
  output_schema field, full_response JSON and status STRING, then the input's columns
  (https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-generate-table
  and the tutorial .../docs/generate-table).
- AI.GENERATE(prompt [, endpoint => ..., model_params => JSON '...', output_schema => ...,
  connection_id => ..., request_type => ...]): a scalar function, one STRUCT per row:
  result STRING (or the output_schema's fields), full_response JSON, status STRING
  (https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-ai-generate;
  the argument list and output fields as the sibling AI.GENERATE_DOUBLE page words them).
  The prompt is a STRING or a tuple/STRUCT of STRING parts, concatenated in order. Each
  call becomes a DuckDB scalar function registered for the statement (`register`).

A row the model refuses gets its reason in status and NULL results; the query succeeds.
"""

from __future__ import annotations

import json
import re
import uuid

import pyarrow as pa

from labkit.bigquery.ml import output_schema, remote
from labkit.bigquery.ml.errors import MLError, not_local
from labkit.bigquery.ml.functions.common import with_inputs
from labkit.bigquery.ml.functions.generate import (
    _input_texts,
    _settings,
    ai_generate_embedding,
    answer_text,
    check_request_type,
    generate_one,
    generation_config,
)
from labkit.bigquery.ml.sqlscan import close_paren, literal, mask, split_alias, split_top

DEFAULT_ENDPOINT = "gemini-2.5-flash"  # "Currently, the default endpoint is gemini-2.5-flash"
GENERATE = re.compile(r"\bAI\s*\.\s*GENERATE\s*\(", re.I)
_NAMED = re.compile(r"^\s*(?P<name>\w+)\s*=>\s*(?P<value>.*)$", re.S)
_ARGUMENTS = ("prompt", "endpoint", "model_params", "output_schema", "connection_id",
              "request_type")


def generate_table(model, call, run_query, vertex, project: str) -> pa.Table:
    settings = _settings(call, {"output_schema", "max_output_tokens", "temperature", "top_p",
                                "stop_sequences", "safety_settings", "request_type"})
    if "output_schema" not in settings:
        raise MLError("AI.GENERATE_TABLE needs STRUCT('name TYPE, ...' AS output_schema)")
    fields = output_schema.parse(settings["output_schema"])
    config = {**generation_config(call, settings), "responseMimeType": "application/json",
              "responseSchema": output_schema.object_schema(fields)}
    table, prompts = _input_texts(call, model, run_query, "prompt", "generative")
    values = {name: [] for name, _ in fields}
    answers, status = [], []
    for prompt in prompts:
        answer, state = generate_one(
            lambda body: vertex.call(model, project, "generateContent", body),
            prompt, {"generationConfig": config})
        row, state = _structured(answer, state, fields)
        for name, _ in fields:
            values[name].append(row.get(name))
        answers.append(answer)
        status.append(state)
    columns = {name: pa.array(values[name], kind.arrow()) for name, kind in fields}
    columns["full_response"] = pa.array([json.dumps(a) if a else None for a in answers],
                                        pa.json_())
    columns["status"] = pa.array(status, pa.string())
    return with_inputs(columns, table)


def _structured(answer, state: str, fields) -> tuple[dict, str]:
    """The output_schema's values read from the model's JSON text, and the row's status."""
    text = answer_text(answer) if not state else None
    if text is None:
        return {}, state or "The model returned no candidate."
    try:
        parsed = json.loads(text)
        if not isinstance(parsed, dict):
            raise ValueError("expected a JSON object")
        return {name: kind.read(parsed.get(name)) for name, kind in fields}, ""
    except ValueError as exc:
        return {}, f"Failed to parse the model response as the output_schema: {exc}"


HANDLERS = {"GENERATE_EMBEDDING": ai_generate_embedding, "GENERATE_TABLE": generate_table}


def rewrite_generate(sql: str, project: str, location: str, connections, vertex,
                     register) -> str:
    """`sql` with every AI.GENERATE(...) call replaced by a call of a scalar function made
    for it; register(name, function, duckdb_return_type) makes each one callable."""
    masked = mask(sql)
    pieces, last = [], 0
    for match in GENERATE.finditer(masked):
        if match.start() < last:
            continue  # inside an earlier call's prompt: left for the not-local refusal
        open_at = match.end() - 1
        close = close_paren(masked, open_at)
        prompt, function, return_type = _generate_call(
            sql[open_at + 1:close], project, location, connections, vertex)
        name = f"__bqai_generate_{uuid.uuid4().hex[:12]}"
        register(name, function, return_type)
        pieces += [sql[last:match.start()], f"{name}({prompt})"]
        last = close + 1
    pieces.append(sql[last:])
    return "".join(pieces)


def _generate_call(args_text: str, project, location, connections, vertex):
    prompt, named = None, {}
    for i, arg in enumerate(split_top(args_text)):
        match = _NAMED.match(mask(arg))
        if match:
            key = match["name"].lower()
            if key not in _ARGUMENTS:
                raise MLError(f"AI.GENERATE has no argument named {match['name']}; it takes "
                              f"{', '.join(_ARGUMENTS)}")
            if key in named:
                raise MLError(f"AI.GENERATE: argument {key} is given twice")
            named[key] = arg[match.start("value"):].strip()
        elif i == 0:
            prompt = arg
        else:
            raise MLError("AI.GENERATE takes the prompt first, then named arguments "
                          "(endpoint => '...', output_schema => '...')")
    prompt = named.pop("prompt", prompt)
    if prompt is None:
        raise MLError("AI.GENERATE needs a prompt: a STRING or a STRUCT of STRING values")
    strings = {k: _string(k, v) for k, v in named.items() if k != "model_params"}
    request = _model_params(named.get("model_params"))
    endpoint = strings.get("endpoint", DEFAULT_ENDPOINT)
    kind, model_id = remote.model_of_endpoint(endpoint)
    if kind != "generative":
        raise MLError(f"AI.GENERATE needs a Gemini endpoint; {endpoint} is an embedding model")
    if "connection_id" in strings:
        location = _check_connection(strings["connection_id"], project, connections)
    check_request_type(strings.get("request_type"))
    fields = None
    if "output_schema" in strings:
        fields = output_schema.parse(strings["output_schema"])
        config = request.setdefault("generationConfig", {})
        config.update({"responseMimeType": "application/json",
                       "responseSchema": output_schema.object_schema(fields)})
    target = _Target({"location": location, "model_id": model_id})
    result = fields or [("result", output_schema.Type("STRING"))]
    arrow = pa.struct([(n, t.arrow()) for n, t in result]
                      + [("full_response", pa.string()), ("status", pa.string())])
    duck = "STRUCT(" + ", ".join(f'"{n}" {t.duckdb()}' for n, t in result) + \
        ', "full_response" JSON, "status" VARCHAR)'

    def function(prompts: pa.Array) -> pa.Array:
        rows = []
        for text in prompts.to_pylist():
            answer, state = generate_one(
                lambda body: vertex.call(target, project, "generateContent", body),
                text, request)
            if fields:
                values, state = _structured(answer, state, fields)
            else:
                values = {"result": answer_text(answer) if not state else None}
            rows.append({**values, "full_response": json.dumps(answer) if answer else None,
                         "status": state})
        return pa.array(rows, arrow)

    return _prompt_sql(prompt), function, duck


def _prompt_sql(prompt: str) -> str:
    """A STRING prompt as it is; a tuple or STRUCT of parts as their CONCAT, in order."""
    text = prompt.strip()
    masked = mask(text)
    body = None
    struct = re.match(r"^STRUCT\s*\(", masked, re.I)
    if struct and close_paren(masked, struct.end() - 1) == len(text) - 1:
        body = text[struct.end():-1]
    elif masked.startswith("(") and close_paren(masked, 0) == len(text) - 1:
        body = text[1:-1]
    if body is None:
        return text
    parts = [split_alias(p)[0] for p in split_top(body)]
    return parts[0] if len(parts) == 1 else f"CONCAT({', '.join(parts)})"


def _string(name: str, value: str) -> str:
    try:
        parsed = literal(value)
    except MLError:
        parsed = None
    if not isinstance(parsed, str):
        raise MLError(f"AI.GENERATE: {name} must be a STRING literal, got {value}")
    return parsed


def _model_params(value: str | None) -> dict:
    """model_params => JSON '{...}': the generateContent request body except contents, with
    snake_case field names read as their camelCase JSON names (as proto JSON does)."""
    if value is None:
        return {}
    text = re.sub(r"^\s*JSON\s+", "", value, flags=re.I)
    try:
        params = json.loads(literal(text))
    except (MLError, TypeError, ValueError):
        raise MLError(f"AI.GENERATE: model_params must be a JSON literal such as "
                      f"JSON '{{\"generationConfig\": {{\"temperature\": 0}}}}', got {value}"
                      ) from None
    if not isinstance(params, dict):
        raise MLError("AI.GENERATE: model_params must be a JSON object")
    params = _camel(params)
    if "contents" in params:
        raise MLError("AI.GENERATE: model_params cannot set contents; the prompt fills it")
    if "tools" in params:
        raise not_local("AI.GENERATE with tools in model_params (Google Search grounding)")
    return params


def _camel(value):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            head, *rest = key.split("_")
            camel = head + "".join(w.title() for w in rest)
            out[camel] = item if camel in ("responseSchema", "properties") else _camel(item)
        return out
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _check_connection(text: str, project: str, connections) -> str:
    """The connection's location; a missing connection is BigQuery's Not found."""
    project_id, location, conn_id = remote.connection_parts(text, project)
    if connections is not None and connections.find(project_id, location, conn_id) is None:
        raise MLError(f"Not found: Connection {project_id}.{location}.{conn_id}", "notFound")
    return location


class _Target:
    """What VertexCaller.call reads of a remote model: its Vertex AI location and model."""

    def __init__(self, options: dict):
        self.options = options
