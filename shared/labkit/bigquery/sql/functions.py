"""Function DDL read into routine resources (labkit.bigquery.routines):

    CREATE [OR REPLACE] [TEMP | TEMPORARY] FUNCTION [IF NOT EXISTS] name (args)
        [RETURNS type] [LANGUAGE lang] [OPTIONS (...)] AS (expression) [OPTIONS (...)]
    CREATE [OR REPLACE] TABLE FUNCTION [IF NOT EXISTS] name (args)
        [RETURNS TABLE<column type, ...>] [OPTIONS (...)] AS query
    DROP [TABLE] FUNCTION [IF EXISTS] name

(https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language,
CREATE FUNCTION / CREATE TABLE FUNCTION / DROP FUNCTION). definitionBody is the body's own
text, as BigQuery keeps it: the expression inside AS ( ), or the query after AS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from labkit.bigquery.errors import invalid_query, unsupported
from labkit.bigquery.sql.translate import parse

_CREATE = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:TEMP|TEMPORARY)\s+)?"
                     r"(TABLE\s+|AGGREGATE\s+)?FUNCTION\b", re.IGNORECASE)
_DROP = re.compile(r"^\s*DROP\s+(TABLE\s+)?FUNCTION\b", re.IGNORECASE)
_DIALECT = BigQuery()


@dataclass
class FunctionDDL:
    action: str  # CREATE or DROP
    table: bool  # a table function
    parts: list[str]  # the function's name, split
    temporary: bool = False
    replace: bool = False
    if_exists: bool = False  # IF NOT EXISTS (create) or IF EXISTS (drop)
    resource: dict | None = None  # the routine's fields (create)

    @property
    def statement_type(self) -> str:
        return f"{self.action}_{'TABLE_' if self.table else ''}FUNCTION"


def read(text: str) -> FunctionDDL | None:
    """The function DDL statement `text` is, or None if it is none."""
    drop = _DROP.match(text)
    if drop:
        tree = parse("DROP FUNCTION" + text[drop.end():])
        target = tree.args.get("tables")[0] if tree.args.get("tables") else tree.this
        return FunctionDDL("DROP", bool(drop.group(1)), _parts(target),
                           if_exists=bool(tree.args.get("exists")))
    create = _CREATE.match(text)
    if not create:
        return None
    if (create.group(1) or "").strip().upper() == "AGGREGATE":
        raise unsupported("CREATE AGGREGATE FUNCTION")
    table = bool(create.group(1))
    if table:  # sqlglot reads TABLE FUNCTION as a (scalar) FUNCTION
        text = text[:create.start(1)] + text[create.end(1):]
    head, body, tail = _split_body(text, table)
    tree = parse(f"{head} {tail} AS {'SELECT 1' if table else '(NULL)'}")
    if not (isinstance(tree, exp.Create) and isinstance(tree.this, exp.UserDefinedFunction)):
        raise invalid_query("Syntax error: expected CREATE FUNCTION name(arguments) AS ...")
    function = tree.this
    props = tree.args.get("properties")
    props = props.expressions if props else []
    _refuse_other_languages(props)
    resource = {"routineType": "TABLE_VALUED_FUNCTION" if table else "SCALAR_FUNCTION",
                "language": "SQL", "definitionBody": body,
                "arguments": [_argument(c) for c in function.expressions]}
    for prop in props:
        if isinstance(prop, exp.ReturnsProperty):
            returned = prop.this
            if isinstance(returned, exp.Schema):  # RETURNS TABLE<column type, ...>
                resource["returnTableType"] = {"columns": [
                    {"name": c.name, "type": _standard(c.args["kind"])}
                    for c in returned.expressions]}
            elif isinstance(returned, exp.DataType):
                resource["returnType"] = _standard(returned)
        elif isinstance(prop, exp.Property) and prop.name.lower() == "description" and \
                isinstance(prop.args.get("value"), exp.Literal):
            resource["description"] = prop.args["value"].this
    return FunctionDDL("CREATE", table, _parts(function.this),
                       temporary=any(isinstance(p, exp.TemporaryProperty) for p in props),
                       replace=bool(tree.args.get("replace")),
                       if_exists=bool(tree.args.get("exists")), resource=resource)


def _standard(kind: exp.DataType) -> dict:
    from labkit.bigquery.routines import standard_type

    return standard_type(kind)


def _argument(column: exp.Expression) -> dict:
    if not isinstance(column, exp.ColumnDef) or column.args.get("kind") is None:
        raise invalid_query(f"Syntax error: each function argument needs a name and a type "
                            f"({column.sql('bigquery')})")
    kind = column.args["kind"]
    if kind.this in (exp.DataType.Type.VARIANT, exp.DataType.Type.UNKNOWN):  # ANY TYPE
        return {"name": column.name, "argumentKind": "ANY_TYPE"}
    if kind.this.name == "TABLE":
        raise unsupported("Table arguments of functions")
    return {"name": column.name, "dataType": _standard(kind)}


def _refuse_other_languages(props: list) -> None:
    for prop in props:
        if isinstance(prop, exp.LanguageProperty):
            language = prop.name.upper()
            if language != "SQL":
                raise unsupported(f"{'JavaScript' if language == 'JS' else language.title()}"
                                  f" user-defined functions (LANGUAGE {prop.name})")
        if type(prop).__name__.startswith("Remote"):
            raise unsupported("Remote functions (REMOTE WITH CONNECTION)")


def _parts(target: exp.Expression) -> list[str]:
    if not isinstance(target, exp.Table):
        raise invalid_query("Syntax error: expected a function name")
    return [name for part in target.parts for name in part.name.split(".")]


def _split_body(text: str, table: bool) -> tuple[str, str, str]:
    """(the statement before its top-level AS, the body's text, what follows the body)."""
    try:
        tokens = _DIALECT.tokenize(text)
    except TokenError as exc:
        raise invalid_query(f"Syntax error: {exc}") from exc
    depth, at = 0, None
    for i, token in enumerate(tokens):
        if token.token_type in (TokenType.L_PAREN, TokenType.LT):
            depth += 1
        elif token.token_type in (TokenType.R_PAREN, TokenType.GT):
            depth -= 1
        elif token.token_type == TokenType.ALIAS and depth == 0:
            at = i
            break
    if re.search(r"\bREMOTE\s+WITH\s+CONNECTION\b", text[:tokens[at].start] if at else text,
                 re.IGNORECASE):
        raise unsupported("Remote functions (REMOTE WITH CONNECTION)")
    if at is None or at + 1 >= len(tokens):
        raise invalid_query("Syntax error: expected AS followed by the function's body")
    head = text[:tokens[at].start]
    rest = tokens[at + 1:]
    if table:
        return head, text[rest[0].start:].strip(), ""
    if rest[0].token_type != TokenType.L_PAREN:
        if rest[0].token_type in (TokenType.STRING, TokenType.RAW_STRING,
                                  TokenType.HEREDOC_STRING):
            language = re.search(r"\bLANGUAGE\s+(\w+)", head, re.IGNORECASE)
            name = language.group(1) if language else "js"
            raise unsupported(f"{'JavaScript' if name.lower() == 'js' else name.title()} "
                              f"user-defined functions (LANGUAGE {name})")
        raise invalid_query("Syntax error: a SQL function's body is AS (expression)")
    depth = 0
    for token in rest:
        depth += token.token_type == TokenType.L_PAREN
        depth -= token.token_type == TokenType.R_PAREN
        if depth == 0:
            return (head, text[rest[0].end + 1:token.start].strip(),
                    text[token.end + 1:].strip())
    raise invalid_query("Syntax error: unbalanced parentheses in the function's body")
