"""Splitting a BigQuery request into statements, without parsing them.

BigQuery ML statements (CREATE MODEL, ML.EVALUATE ...) are not all parseable by sqlglot,
so statements are cut at top-level semicolons using the tokenizer alone (it knows
strings, comments and backticks), and each statement's own text is kept.
"""

from __future__ import annotations

from sqlglot.dialects.bigquery import BigQuery
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from labkit.bigquery.errors import invalid_query

_DIALECT = BigQuery()


def split_statements(sql: str) -> list[str]:
    try:
        tokens = _DIALECT.tokenize(sql)
    except TokenError as exc:
        raise invalid_query(f"Syntax error: {exc}") from exc
    statements, start = [], 0
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            text = sql[start:token.start].strip()
            if text:
                statements.append(text)
            start = token.end + 1
    tail = sql[start:].strip()
    if tail:
        statements.append(tail)
    if not statements:
        raise invalid_query("Syntax error: Unexpected end of script at [1:1]")
    return statements
