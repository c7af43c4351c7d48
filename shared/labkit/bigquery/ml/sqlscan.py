"""Lexical helpers for the ML statement pre-pass: BigQuery's ML syntax is not parsed by
sqlglot (ML.EVALUATE, ML.ROC_CURVE, ...), so statements are cut apart here by parentheses
and commas outside strings and comments, and option values are read as literals."""

from __future__ import annotations

import re
from dataclasses import dataclass

from labkit.bigquery.ml.errors import MLError

_TRIPLE = ("'''", '"""')


def mask(sql: str) -> str:
    """`sql` with string-literal contents and comments blanked, same length, so that
    structure (parentheses, commas, keywords) can be searched without false hits."""
    out = list(sql)
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            quote = sql[i:i + 3] if sql[i:i + 3] in _TRIPLE else c
            j = i + len(quote)
            while j < n and not sql.startswith(quote, j):
                j += 2 if sql[j] == "\\" else 1
            for k in range(i + len(quote), min(j, n)):
                out[k] = "_"
            i = j + len(quote)
        elif sql.startswith("--", i) or c == "#":
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out[i:j] = " " * (j - i)
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out[i:j] = " " * (j - i)
            i = j
        elif c == "`":
            j = sql.find("`", i + 1)
            i = n if j < 0 else j + 1
        else:
            i += 1
    return "".join(out)


def close_paren(masked: str, start: int) -> int:
    """Index of the bracket closing the one at `start` (a parenthesis or square bracket)."""
    pairs = {"(": ")", "[": "]"}
    depth = 0
    for i in range(start, len(masked)):
        c = masked[i]
        if c in pairs:
            depth += 1
        elif c in ")]":
            depth -= 1
            if depth == 0:
                return i
    raise MLError("Syntax error: unbalanced parentheses in the ML statement")


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets, strings and comments; parts are stripped."""
    masked = mask(text)
    parts, depth, last = [], 0, 0
    for i, c in enumerate(masked):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[last:i].strip())
            last = i + 1
    tail = text[last:].strip()
    if tail or parts:
        parts.append(tail)
    return [p for p in parts if p]


_ALIAS = re.compile(r"^(?P<expr>.*?)\s+AS\s+(?P<alias>`[^`]+`|\w+)\s*$", re.I | re.S)


def split_alias(item: str) -> tuple[str, str | None]:
    """`expr AS name` -> (expr, name); a trailing alias only counts outside brackets."""
    masked = mask(item)
    match = _ALIAS.match(masked)
    if not match:
        return item.strip(), None
    expr = item[:match.end("expr")].strip()
    return expr, match.group("alias").strip("`")


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class HparamRange:
    """HPARAM_RANGE(min, max): a hyperparameter searched over [min, max]."""
    low: float
    high: float


@dataclass(frozen=True)
class HparamCandidates:
    """HPARAM_CANDIDATES([v, ...]): a hyperparameter chosen among the values."""
    values: tuple


def literal(text: str):
    """A BigQuery literal as a Python value: strings, numbers, booleans, NULL, arrays
    [..] (with an optional ARRAY<T> prefix), STRUCT(..) / (..) tuples, GENERATE_ARRAY."""
    t = text.strip()
    upper = t.upper()
    if upper in ("TRUE", "FALSE"):
        return upper == "TRUE"
    if upper == "NULL":
        return None
    if _NUMBER.match(t):
        return float(t) if any(ch in t for ch in ".eE") else int(t)
    prefix = re.match(r"^[rRbB]?(\"\"\"|'''|'|\")", t)
    if prefix:
        quote = prefix.group(1)
        body = t[prefix.end():len(t) - len(quote)]
        if t[0] in "rR":
            return body
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)),
                      body)
    array = re.match(r"^(ARRAY\s*(<.*?>)?\s*)?\[(?P<body>.*)\]$", t, re.I | re.S)
    if array:
        return [literal(p) for p in split_top(array.group("body"))]
    gen = re.match(r"^GENERATE_ARRAY\s*\((?P<body>.*)\)$", t, re.I | re.S)
    if gen:
        args = [literal(p) for p in split_top(gen.group("body"))]
        start, stop = args[0], args[1]
        step = args[2] if len(args) > 2 else 1
        values, k = [], 0
        while start + k * step <= stop + 1e-12:
            values.append(round(start + k * step, 12))
            k += 1
        return values
    hparam = re.match(r"^HPARAM_(?P<kind>RANGE|CANDIDATES)\s*\((?P<body>.*)\)$", t, re.I | re.S)
    if hparam:
        args = [literal(p) for p in split_top(hparam.group("body"))]
        if hparam.group("kind").upper() == "RANGE":
            if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                         for a in args):
                raise MLError(f"HPARAM_RANGE takes two numbers (min, max): {t}")
            if args[0] > args[1]:
                raise MLError(f"HPARAM_RANGE minimum {args[0]} is greater than its maximum "
                              f"{args[1]}")
            return HparamRange(*args)
        if len(args) != 1 or not isinstance(args[0], list) or not args[0]:
            raise MLError(f"HPARAM_CANDIDATES takes one non-empty array: {t}")
        return HparamCandidates(tuple(tuple(v) if isinstance(v, list) else v for v in args[0]))
    struct = re.match(r"^(STRUCT\s*)?\((?P<body>.*)\)$", t, re.I | re.S)
    if struct:
        return tuple(literal(split_alias(p)[0]) for p in split_top(struct.group("body")))
    cast = re.match(r"^CAST\s*\((?P<v>.*)\s+AS\s+\w+\s*\)$", t, re.I | re.S)
    if cast:
        return literal(cast.group("v"))
    raise MLError(f"Expected a literal value but got: {t}")
