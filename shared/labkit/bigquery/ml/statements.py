"""The ML statement forms: CREATE MODEL, DROP MODEL, and ML.<FN>(MODEL ...) calls inside
a query. Cut apart lexically (see sqlscan); the SQL pieces in them (training query,
TRANSFORM expressions, input queries) are left to the SQL engine."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from labkit.bigquery.ml.errors import MLError, not_local
from labkit.bigquery.ml.sqlscan import close_paren, literal, mask, split_alias, split_top

_PART = r"(?:`[^`]+`|[A-Za-z_][\w-]*)"
NAME = rf"{_PART}(?:\s*\.\s*{_PART})*"
_CREATE = re.compile(rf"^\s*CREATE\s+(?P<replace>OR\s+REPLACE\s+)?(?:TEMP\w*\s+)?MODEL\s+"
                     rf"(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<name>{NAME})", re.I)
_DROP = re.compile(rf"^\s*DROP\s+MODEL\s+(?P<ie>IF\s+EXISTS\s+)?(?P<name>{NAME})\s*;?\s*$", re.I)
_EXPORT = re.compile(rf"^\s*EXPORT\s+MODEL\s+(?P<name>{NAME})(?P<rest>.*?)\s*;?\s*$", re.I | re.S)
# ML.<FN>(MODEL ...) and the AI.<FN>(MODEL ...) table functions (AI.GENERATE_EMBEDDING, ...)
ML_CALL = re.compile(r"\b(?P<ns>ML|AI)\s*\.\s*(?P<fn>[A-Za-z_]+)\s*\(\s*MODEL\b", re.I)


@dataclass
class ModelRef:
    project: str
    dataset: str
    model: str

    def as_dict(self) -> dict:
        return {"projectId": self.project, "datasetId": self.dataset, "modelId": self.model}

    def __str__(self) -> str:
        return f"{self.project}:{self.dataset}.{self.model}"


def resolve(name: str, project: str, dataset: str | None) -> ModelRef:
    parts = [p.strip() for p in name.replace("`", "").split(".")]
    if len(parts) == 3:
        return ModelRef(*parts)
    if len(parts) == 2:
        return ModelRef(project, parts[0], parts[1])
    if len(parts) == 1 and dataset:
        return ModelRef(project, dataset, parts[0])
    raise MLError(f'Model name "{name.strip()}" missing dataset while no default dataset is set '
                  "in the request.")


@dataclass
class CreateModel:
    ref: ModelRef
    replace: bool
    if_not_exists: bool
    options: dict
    transform: list[str] | None
    query: str
    connection: str | None = None  # REMOTE WITH CONNECTION: DEFAULT or `project.region.id`


@dataclass
class DropModel:
    ref: ModelRef
    if_exists: bool


@dataclass
class ExportModel:
    ref: ModelRef
    options: dict


@dataclass
class MLCall:
    fn: str
    ref: ModelRef
    start: int
    end: int                      # sql[start:end] is the whole call
    table: str | None = None      # TABLE name argument
    query: str | None = None      # (subquery) argument
    settings: dict = field(default_factory=dict)   # STRUCT(value AS name, ...) argument
    namespace: str = "ML"         # or "AI" (AI.GENERATE_EMBEDDING, AI.GENERATE_TABLE)

    @property
    def name(self) -> str:
        return f"{self.namespace}.{self.fn}"


def is_create(sql: str) -> bool:
    return bool(_CREATE.match(mask(sql)))


def is_drop(sql: str) -> bool:
    return bool(_DROP.match(mask(sql)))


def is_export(sql: str) -> bool:
    return bool(_EXPORT.match(mask(sql)))


def parse_export(sql: str, project: str, dataset: str | None) -> ExportModel:
    """EXPORT MODEL name [OPTIONS(URI = 'gs://...' [, TRIAL_ID = n])]
    (docs: https://cloud.google.com/bigquery/docs/reference/standard-sql/
    bigqueryml-syntax-export-model)."""
    masked = mask(sql)
    match = _EXPORT.match(masked)
    ref = resolve(sql[match.start("name"):match.end("name")], project, dataset)
    rest = masked[match.start("rest"):match.end("rest")].strip()
    options: dict = {}
    if re.match(r"WITH\s+CONNECTION\b", rest, re.I):
        raise not_local("EXPORT MODEL ... WITH CONNECTION")
    if rest:
        if not re.match(r"OPTIONS\s*\(", rest, re.I):
            raise MLError(f"Syntax error: expected OPTIONS after EXPORT MODEL {ref.model}")
        open_at = masked.index("(", match.start("rest"))
        close = close_paren(masked, open_at)
        if masked[close + 1:].strip() not in ("", ";"):
            raise MLError("Syntax error: unexpected text after EXPORT MODEL OPTIONS(...)")
        options = parse_options(sql[open_at + 1:close])
    return ExportModel(ref, options)


def parse_options(body: str) -> dict:
    options = {}
    for item in split_top(body):
        key, eq, value = item.partition("=")
        if not eq:
            raise MLError(f"Syntax error: expected OPTIONS entry of the form name=value: {item}")
        key = key.strip().lower()
        if key in options:
            raise MLError(f"Duplicate option: {key}")
        options[key] = literal(value)
    return options


def parse_create(sql: str, project: str, dataset: str | None) -> CreateModel:
    masked = mask(sql)
    head = _CREATE.match(masked)
    ref = resolve(sql[head.start("name"):head.end("name")], project, dataset)
    pos = head.end()
    transform = None
    options: dict = {}
    query = None
    connection = None
    while pos < len(sql):
        rest = masked[pos:]
        word = re.match(r"\s*(\w+)", rest)
        if not word or masked[pos:].strip() in ("", ";"):
            break
        kw = word.group(1).upper()
        at = pos + word.end()
        if kw in ("TRANSFORM", "OPTIONS", "INPUT", "OUTPUT"):
            open_at = masked.index("(", at)
            close = close_paren(masked, open_at)
            body = sql[open_at + 1:close]
            if kw == "TRANSFORM":
                transform = split_top(body)
            elif kw == "OPTIONS":
                options = parse_options(body)
            else:
                raise not_local("CREATE MODEL with INPUT/OUTPUT schema (imported or remote "
                                "models)")
            pos = close + 1
        elif kw == "REMOTE":
            remote = re.match(rf"\s*WITH\s+CONNECTION\s+(?P<conn>DEFAULT\b|{NAME})",
                              masked[at:], re.I)
            if not remote:
                raise MLError("Syntax error: expected REMOTE WITH CONNECTION "
                              "{DEFAULT | `project.region.connection`}")
            connection = sql[at + remote.start("conn"):at + remote.end("conn")]
            pos = at + remote.end()
        elif kw == "AS":
            query = sql[at:].strip().rstrip(";").strip()
            break
        else:
            raise MLError(f"Syntax error: unexpected keyword {word.group(1)} in CREATE MODEL")
    if query is not None and query.startswith("("):
        inner_masked = mask(query)
        close = close_paren(inner_masked, 0)
        if inner_masked[close + 1:].strip() == "":
            query = query[1:close].strip()
        if re.match(r"^\w+\s+AS\s*\(", mask(query), re.I):
            raise not_local("CREATE MODEL with named training_data / custom_holiday queries")
    return CreateModel(ref, bool(head.group("replace")), bool(head.group("ine")), options,
                       transform, query, connection)


def parse_drop(sql: str, project: str, dataset: str | None) -> DropModel:
    masked = mask(sql)
    match = _DROP.match(masked)
    return DropModel(resolve(sql[match.start("name"):match.end("name")], project, dataset),
                     bool(match.group("ie")))


def parse_struct(text: str) -> dict:
    match = re.match(r"^\s*STRUCT\s*\((?P<body>.*)\)\s*$", text, re.I | re.S)
    if not match:
        raise MLError(f"Expected STRUCT(...) argument but got: {text.strip()}")
    settings = {}
    for item in split_top(match.group("body")):
        value, name = split_alias(item)
        if name is None:
            raise MLError(f"STRUCT fields of ML functions need a name (value AS name): {item}")
        settings[name.lower()] = literal(value)
    return settings


def find_calls(sql: str, project: str, dataset: str | None) -> list[MLCall]:
    """Every outermost ML.<FN>(MODEL ...) or AI.<FN>(MODEL ...) call in `sql`, in order."""
    masked = mask(sql)
    calls: list[MLCall] = []
    for match in ML_CALL.finditer(masked):
        if calls and match.start() < calls[-1].end:
            continue  # inside an earlier call's input: that input's query runs it
        open_at = masked.index("(", match.start())
        close = close_paren(masked, open_at)
        args = split_top(sql[open_at + 1:close])
        name = re.sub(r"^\s*MODEL\s+", "", args[0], flags=re.I)
        call = MLCall(match.group("fn").upper(), resolve(name, project, dataset),
                      match.start(), close + 1, namespace=match.group("ns").upper())
        for arg in args[1:]:
            m_arg = mask(arg)
            if re.match(r"^\s*TABLE\s", m_arg, re.I):
                call.table = arg.strip()[5:].strip()
            elif m_arg.lstrip().startswith("("):
                call.query = arg.strip()[1:-1].strip()
            elif re.match(r"^\s*STRUCT\s*\(", m_arg, re.I):
                call.settings.update(parse_struct(arg))
            elif re.match(r"^\s*(GENERATE_ARRAY\s*\(|\[|ARRAY\b)", m_arg, re.I):
                call.settings["thresholds"] = literal(arg)
            else:
                raise MLError(f"Invalid argument to {call.name}: {arg}")
        calls.append(call)
    return calls
