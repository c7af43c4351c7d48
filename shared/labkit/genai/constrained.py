"""Constrained decoding for response_schema and function arguments.

The JSON text is built by walking the schema: what the schema fixes (braces, keys, commas,
quotes) is fed to the model as forced text, and where the schema leaves a choice the model
makes it under a mask over the tokenizer's vocabulary: string content from tokens that can
sit inside a JSON string, numbers from digit tokens, enums/booleans/array lengths by the
log-probability of each alternative. The output therefore always parses and validates.

Schemas are Vertex's OpenAPI subset (type names upper or lower case): OBJECT with
properties/required/propertyOrdering, ARRAY with items/minItems/maxItems, STRING with
enum/maxLength, INTEGER, NUMBER, BOOLEAN, nullable. What the API rejects is a 400 here.
"""

from __future__ import annotations

import json

import numpy as np

from labkit.genai.errors import InvalidArgument, NotLocal
from labkit.genai.generation import Budget, Decoder

TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"}
KEYS = {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
        "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
        "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum",
        "maximum"}
MAX_STRING_TOKENS = 24
MAX_DIGITS = 8


def normalised(schema):
    """The schema with snake_case keys (google-genai sends property_ordering) in camelCase;
    property names are kept as they are."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        head, *rest = key.split("_")
        key = head + "".join(w.title() for w in rest)
        if key == "properties" and isinstance(value, dict):
            value = {name: normalised(sub) for name, sub in value.items()}
        elif key == "items":
            value = normalised(value)
        elif key == "anyOf" and isinstance(value, list):
            value = [normalised(v) for v in value]
        out[key] = value
    return out


def from_json_schema(schema):
    """A JSON Schema (what google-genai derives from a Python function) as the OpenAPI
    subset `parameters` uses: upper-case types, ["T", "null"] as nullable; annotations the
    decoder has no use for (additionalProperties, $schema) dropped; $ref refused."""
    if not isinstance(schema, dict):
        raise InvalidArgument("parameters_json_schema: a schema must be an object.")
    if "$ref" in schema or "$defs" in schema:
        raise NotLocal("parameters_json_schema with $ref/$defs (nested models)")
    out = {}
    for key, value in schema.items():
        if key in ("additionalProperties", "$schema"):
            continue
        if key == "type":
            kinds = value if isinstance(value, list) else [value]
            named = [k for k in kinds if k != "null"]
            if len(named) != 1 or not isinstance(named[0], str):
                raise InvalidArgument(f"parameters_json_schema: unsupported type {value!r}.")
            out["type"] = named[0].upper()
            if "null" in kinds:
                out["nullable"] = True
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: from_json_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = from_json_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [from_json_schema(v) for v in value]
        else:
            out[key] = value
    return out


def check_schema(schema, where: str = "response_schema") -> None:
    if not isinstance(schema, dict):
        raise InvalidArgument(f"{where}: a schema must be an object.")
    unknown = set(schema) - KEYS
    if unknown:
        raise InvalidArgument(f"Invalid JSON payload received. Unknown name "
                              f"\"{sorted(unknown)[0]}\" at '{where}'.")
    if "anyOf" in schema:
        raise InvalidArgument(f"{where}: anyOf is not supported by the local model's "
                              f"constrained decoding; it runs with LAB_BACKEND=gcp.")
    kind = str(schema.get("type", "")).upper()
    if kind not in TYPES:
        raise InvalidArgument(f"{where}.type: {schema.get('type')!r} is not one of "
                              f"{sorted(TYPES)}.")
    if "enum" in schema:
        enum = schema["enum"]
        if kind != "STRING" or not isinstance(enum, list) or not enum or \
                not all(isinstance(e, str) for e in enum):
            raise InvalidArgument(f"{where}.enum: enum values must be a non-empty list of "
                                  f"strings on a STRING schema.")
    if kind == "OBJECT":
        props = schema.get("properties")
        if not isinstance(props, dict) or not props:
            raise InvalidArgument(f"{where}.properties: should be non-empty for OBJECT type")
        for name, sub in props.items():
            check_schema(sub, f"{where}.properties[{name}]")
        for name in schema.get("required", []):
            if name not in props:
                raise InvalidArgument(f"{where}.required: property {name!r} is not defined.")
        order = schema.get("propertyOrdering")
        if order is not None and sorted(order) != sorted(props):
            raise InvalidArgument(f"{where}.propertyOrdering must name every property once.")
    if kind == "ARRAY":
        if "items" not in schema:
            raise InvalidArgument(f"{where}.items: missing field.")
        check_schema(schema["items"], f"{where}.items")


class Vocabulary:
    """Masks over the vocabulary, computed once per model."""

    def __init__(self, tokenizer):
        texts = tokenizer.token_texts()
        n = len(texts)
        self.string = np.zeros(n, dtype=bool)
        self.digits = np.zeros(n, dtype=bool)
        for i, t in enumerate(texts):
            if t and t.isprintable() and '"' not in t and "\\" not in t:
                self.string[i] = True
            if t and t.isascii() and t.isdigit() and len(t) <= 3:
                self.digits[i] = True
        self.quote = tokenizer.encode('"')[0]
        self.string[self.quote] = True


def generate_json(decoder: Decoder, schema: dict, vocab: Vocabulary, budget: Budget) -> object:
    """Decodes one value of schema; returns the Python value (its JSON text was fed)."""
    kind = str(schema.get("type")).upper()
    if kind == "OBJECT":
        order = schema.get("propertyOrdering") or list(schema["properties"])
        value = {}
        _force(decoder, "{", budget)
        for n, name in enumerate(order):
            _force(decoder, ("" if n == 0 else ", ") + json.dumps(name) + ": ", budget)
            value[name] = generate_json(decoder, schema["properties"][name], vocab, budget)
        _force(decoder, "}", budget)
        return value
    if kind == "ARRAY":
        low = int(schema.get("minItems", 1))
        high = int(schema.get("maxItems", max(low, 3)))
        items = []
        _force(decoder, "[", budget)
        while len(items) < high:
            if len(items) >= low and (budget.left < 4 or decoder.choose(["]", ", "]) == 0):
                break
            if items:
                _force(decoder, ", ", budget)
            items.append(generate_json(decoder, schema["items"], vocab, budget))
        _force(decoder, "]", budget)
        return items
    if "enum" in schema:
        options = [json.dumps(e) for e in schema["enum"]]
        pick = decoder.choose(options)
        _force(decoder, options[pick], budget)
        return schema["enum"][pick]
    if kind == "BOOLEAN":
        pick = decoder.choose(["true", "false"])
        _force(decoder, ["true", "false"][pick], budget)
        return pick == 0
    if kind in ("INTEGER", "NUMBER"):
        return _number(decoder, schema, vocab, budget, kind == "INTEGER")
    return _string(decoder, schema, vocab, budget)


def _force(decoder: Decoder, text: str, budget: Budget) -> None:
    ids = decoder.tokenizer.encode(text)
    decoder.feed(ids, generated=True)
    budget.used += len(ids)


def _string(decoder: Decoder, schema: dict, vocab: Vocabulary, budget: Budget) -> str:
    _force(decoder, '"', budget)
    limit = min(MAX_STRING_TOKENS, max(1, budget.left - 8))
    max_chars = schema.get("maxLength")
    pieces: list[str] = []
    texts = decoder.tokenizer.token_texts()
    for step in range(limit):
        allowed = vocab.string.copy()
        if step == 0:
            allowed[vocab.quote] = False  # at least one character
        token = decoder.next_token(allowed)
        if token == vocab.quote:
            break
        decoder.feed([token], generated=True)
        budget.used += 1
        pieces.append(texts[token])
        if max_chars is not None and len("".join(pieces)) >= int(max_chars):
            break
    else:
        budget.hit = budget.hit or budget.left <= 8
    text = "".join(pieces)
    if max_chars is not None:
        text = text[:int(max_chars)]
    _force(decoder, '"', budget)
    return text


def _number(decoder: Decoder, schema, vocab: Vocabulary, budget: Budget, integer: bool):
    digits = ""
    texts = decoder.tokenizer.token_texts()
    while len(digits) < MAX_DIGITS:
        allowed = vocab.digits.copy()
        if digits:  # the model may end the number by choosing what follows
            ender = decoder.tokenizer.encode(",")[0]
            allowed[ender] = True
        token = decoder.next_token(allowed)
        if digits and not vocab.digits[token]:
            break
        decoder.feed([token], generated=True)
        budget.used += 1
        digits += texts[token]
        if digits == "0":
            break
    value = int(digits.lstrip("0") or "0")
    if "minimum" in schema:
        value = max(value, int(schema["minimum"]))
    if "maximum" in schema:
        value = min(value, int(schema["maximum"]))
    return value if integer else float(value)
