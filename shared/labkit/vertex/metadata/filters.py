"""The AIP-160 filter subset Vertex ML Metadata list calls accept, as the SDK writes it.

    schema_title="system.Run" AND in_context("projects/../contexts/c")
    (schema_title="a" OR schema_title="b") AND parent_contexts:"ctx1","ctx2"
    display_name="x" AND create_time>"2026-01-01T00:00:00Z" AND metadata.k.string_value="v"

`in_context` and `parent_contexts` need relations the resource does not carry, so the
caller passes predicates for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from labkit.vertex import errors

TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op><=|>=|!=|=|<|>|:)|(?P<punct>[(),])'
                   r'|(?P<word>[A-Za-z_][A-Za-z0-9_.\-]*|-?[0-9][0-9.eE+\-]*))')
FIELDS = {"display_name": "displayName", "schema_title": "schemaTitle",
          "schema_version": "schemaVersion", "create_time": "createTime",
          "update_time": "updateTime", "uri": "uri", "state": "state", "name": "name",
          "parent_contexts": "parentContexts", "description": "description"}


class Relations:
    """What a filter may ask beyond the resource's own fields."""

    def __init__(self, in_context: Callable[[str, str], bool]):
        self.in_context = in_context


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise errors.invalid(f"Invalid filter near {text[pos:pos + 20]!r}.")
        kind = m.lastgroup
        value = m[kind]
        if kind == "str":
            value = value[1:-1].replace('\\"', '"')
        out.append((kind, value))
        pos = m.end()
    return out


def compile_filter(text: str | None, relations: Relations) -> Callable[[dict], bool]:
    """A predicate over one resource dict; raises INVALID_ARGUMENT for what it can't read."""
    if not text or not text.strip():
        return lambda resource: True
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise errors.invalid(f"Filter {text!r} ends too early.")
        pos += 1
        return tokens[pos - 1]

    def disjunction():
        parts = [conjunction()]
        while peek() == ("word", "OR"):
            take()
            parts.append(conjunction())
        return lambda r: any(p(r) for p in parts)

    def conjunction():
        parts = [unary()]
        while peek() == ("word", "AND"):
            take()
            parts.append(unary())
        return lambda r: all(p(r) for p in parts)

    def unary():
        if peek() == ("word", "NOT"):
            take()
            inner = unary()
            return lambda r: not inner(r)
        if peek() == ("punct", "("):
            take()
            inner = disjunction()
            if take() != ("punct", ")"):
                raise errors.invalid(f"Unbalanced parentheses in filter {text!r}.")
            return inner
        return comparison()

    def comparison():
        kind, field = take()
        if kind != "word":
            raise errors.invalid(f"Expected a field name in filter {text!r}.")
        if field in ("in_context", "with_context") and peek() == ("punct", "("):
            take()
            _, ctx = take()
            if take() != ("punct", ")"):
                raise errors.invalid(f"Expected ) after in_context in filter {text!r}.")
            return lambda r: relations.in_context(r["name"], ctx)
        kind, op = take()
        if kind != "op":
            raise errors.invalid(f"Expected an operator after {field} in filter {text!r}.")
        values = [take()[1]]
        while op == ":" and peek() == ("punct", ","):
            take()
            values.append(take()[1])
        getter = _getter(field)
        return lambda r: _compare(getter(r), op, values)

    predicate = disjunction()
    if pos != len(tokens):
        raise errors.invalid(f"Unexpected {tokens[pos][1]!r} in filter {text!r}.")
    return predicate


def _getter(field: str) -> Callable[[dict], object]:
    if field in FIELDS:
        key = FIELDS[field]
        return lambda r: r.get(key)
    if field.startswith("labels."):
        return lambda r: (r.get("labels") or {}).get(field[7:])
    if field.startswith("metadata."):
        # metadata.KEY or metadata.KEY.string_value / number_value / bool_value
        parts = field[9:].split(".")
        if parts[-1] in ("string_value", "number_value", "bool_value", "struct_value"):
            parts = parts[:-1]
        key = ".".join(parts)
        return lambda r: (r.get("metadata") or {}).get(key)
    raise errors.invalid(f"Unsupported filter field: {field!r}.")


def _compare(actual: object, op: str, values: list[str]) -> bool:
    if op == ":":
        if isinstance(actual, list):
            return any(v in actual for v in values)
        return actual is not None and any(v in str(actual) for v in values)
    value = values[0]
    if isinstance(actual, bool):
        expected: object = value.lower() == "true"
    elif isinstance(actual, (int, float)):
        try:
            expected = float(value)
        except ValueError:
            return False
    else:
        expected = value
        actual = "" if actual is None else str(actual)
    if op == "=":
        return actual == expected
    if op == "!=":
        return actual != expected
    try:
        return {"<": actual < expected, ">": actual > expected,  # type: ignore[operator]
                "<=": actual <= expected, ">=": actual >= expected}[op]  # type: ignore[operator]
    except TypeError:
        return False
