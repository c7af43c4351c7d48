"""Request bodies checked against Google's discovery documents, as Google's front end does.

Vertex AI and BigQuery parse a JSON body into the method's request proto: a field the
message does not have, or an enum value it does not list, is a 400 before the service
sees the request. The answers, in Google's words:

    Invalid JSON payload received. Unknown name "foo" at 'model': Cannot find field.
    Invalid value at 'x' (type.googleapis.com/google.cloud.aiplatform.v1.Y), "BAD"

Sources (the wording, the snake_case path with [i] and map entries as [i].value, the
google.rpc.BadRequest details): Vertex/Gemini answers quoted in
github.com/googleapis/python-aiplatform/issues/4333, github.com/zed-industries/zed/issues/62539,
github.com/google-gemini/gemini-cli/issues/4415; BigQuery parses its JSON the same way
("Unknown name \"clustering\" at 'table'", github.com/ansible-collections/google.cloud/issues/620;
"at 'table.time_partitioning'", github.com/r-dbi/bigrquery/pull/280). Both the JSON
(lowerCamel) and the proto (snake_case) field names are accepted, as protobuf's JSON parser
does.

The schemas are the REST discovery documents google-api-python-client ships
(googleapiclient/discovery_cache/documents/*.json). A method is found by HTTP method and
path template; each schema is compiled once, on first use. Only names and enum values are
checked: a value of the wrong JSON type is left to the handler, and free-form fields
(google.protobuf.Value/Struct/Any, "type": "any") are not looked into.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from labkit.services.http import HttpError, Request, Router, error_body

BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
MAX_VIOLATIONS = 20  # Google lists every violation; a body of junk needs no more


@dataclass
class _Message:
    name: str  # the discovery schema's name, e.g. GoogleCloudAiplatformV1Model
    fields: dict = field(default_factory=dict)  # JSON or proto name -> (proto, JSON, node)


@dataclass
class _Enum:
    owner: str  # the schema (message) that has the field
    field: str  # its proto name
    values: frozenset


@dataclass
class _Array:
    item: object


@dataclass
class _Map:
    value: object


ANY = None  # a node not looked into


@dataclass
class _Method:
    pattern: re.Pattern
    variables: int  # fewer variables = more literal: tried first
    request: str  # the schema name of the body
    body_field: str  # the request message's field the body is ('' for the whole message)


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class Api:
    """One discovery document: finds a request's method and checks its body."""

    def __init__(self, document: dict, enum_type):
        self.document = document
        self.schemas = document["schemas"]
        self.enum_type = enum_type  # (schema name, proto field) -> the enum's full proto name
        self._compiled: dict[str, _Message] = {}  # under _lock, some maybe half-filled
        self._ready: dict[str, _Message] = {}  # filled: read without the lock
        self._lock = threading.Lock()
        self._methods: dict[tuple[str, int, str], list[_Method]] = {}
        self._index(document.get("resources", {}), "/" + document.get("servicePath", ""))

    # ---- methods by HTTP method + path template

    def _index(self, resources: dict, prefix: str) -> None:
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                request = (method.get("request") or {}).get("$ref")
                if request:
                    self._add(method, prefix, request)
            self._index(resource.get("resources", {}), prefix)

    def _add(self, method: dict, prefix: str, request: str) -> None:
        template = prefix + (method.get("flatPath") or method["path"])
        parts, variables = [], 0
        for piece in re.split(r"(\{\+?[^}]+\})", template):
            if piece.startswith("{"):
                variables += 1
                parts.append(".+" if piece.startswith("{+") else r"[^/:]+")
            else:
                parts.append(re.escape(piece))
        key = self._key(method["httpMethod"], template)
        entry = _Method(re.compile("".join(parts) + r"\Z"), variables, request,
                        self._body_field(request))
        bucket = self._methods.setdefault(key, [])
        bucket.append(entry)
        bucket.sort(key=lambda m: m.variables)

    @staticmethod
    def _key(http_method: str, path: str) -> tuple[str, int, str]:
        last = path.rsplit("/", 1)[-1]
        verb = last.rsplit(":", 1)[1] if ":" in last and not last.endswith("}") else ""
        return http_method, path.count("/"), verb

    def _body_field(self, request: str) -> str:
        """The request message's field the body maps to, the root of Google's field paths:
        a Vertex *Request message is the body itself (body: "*"); a resource is the field
        named after it (body: "model"); BigQuery's v2 protos always name it (body: "job",
        "table", "query_request")."""
        short = re.sub(r"^GoogleCloudAiplatformV1(beta1)?", "", request)
        if self.document["name"] == "aiplatform" and short.endswith("Request"):
            return ""
        return snake(short[:1].lower() + short[1:])

    def method(self, http_method: str, path: str) -> _Method | None:
        for candidate in self._methods.get(self._key(http_method, path), ()):
            if candidate.pattern.match(path):
                return candidate
        return None

    # ---- schemas, compiled once

    def request_message(self, name: str) -> _Message:
        """A method's request schema, compiled with every schema it reaches."""
        message = self._ready.get(name)
        if message is None:
            with self._lock:
                message = self._message(name)
                self._ready = dict(self._compiled)  # all filled now: safe to read unlocked
        return message

    def _message(self, name: str) -> _Message:
        message = self._compiled.get(name)
        if message is None:
            message = _Message(name)
            self._compiled[name] = message  # before its fields: schemas recurse
            self._fill(message, self.schemas[name])
        return message

    def _fill(self, message: _Message, schema: dict) -> None:
        for json_name, prop in schema.get("properties", {}).items():
            proto_name = snake(json_name)
            node = self._node(message.name, proto_name, prop)
            entry = (proto_name, json_name, node)
            message.fields[json_name] = message.fields[proto_name] = entry

    def _node(self, owner: str, proto_name: str, prop: dict):
        if "$ref" in prop:
            target = self.schemas[prop["$ref"]]
            if "additionalProperties" in target or target.get("type") not in (None, "object"):
                # a named map or value (BigQuery's JsonObject), not a message
                return self._node(owner, proto_name, {k: v for k, v in target.items()
                                                      if k != "id"})
            return self._message(prop["$ref"])
        kind = prop.get("type")
        if kind == "array":
            item = self._node(owner, proto_name, prop.get("items", {}))
            return ANY if item is ANY else _Array(item)
        if kind == "object":
            extra = prop.get("additionalProperties")
            if isinstance(extra, dict):
                value = self._node(owner, proto_name, extra)
                return ANY if value is ANY else _Map(value)
            if "properties" in prop:  # an inline message
                inline = _Message(owner)
                self._fill(inline, prop)
                return inline
            return ANY
        if kind == "string" and "enum" in prop:
            return _Enum(owner, proto_name, frozenset(prop["enum"]))
        return ANY

    # ---- the check

    def check(self, http_method: str, path: str, body) -> tuple[list[tuple[str, str]], object]:
        """(field path, description) for each name or enum value Google would refuse, and
        the body with every field under its JSON name (the handlers read those)."""
        method = self.method(http_method, path)
        if method is None or not isinstance(body, dict):
            return [], body
        found: list[tuple[str, str]] = []
        canonical = self._walk(body, self.request_message(method.request), method.body_field,
                               found)
        return found, canonical

    def _walk(self, value, node, at: str, found: list):
        """Checks `value` against `node`; returns it, or a copy where proto names became
        JSON names."""
        if node is ANY or value is None or len(found) >= MAX_VIOLATIONS:
            return value
        if isinstance(node, _Message):
            if not isinstance(value, dict):
                return value
            out, changed = {}, False
            for key, item in value.items():
                known = node.fields.get(key)
                if known is None:
                    where = f" at '{at}'" if at else ""
                    found.append((at, f"Invalid JSON payload received. Unknown name "
                                      f"{json.dumps(key)}{where}: Cannot find field."))
                    continue
                proto_name, json_name, child = known
                checked = self._walk(item, child, f"{at}.{proto_name}" if at else proto_name,
                                     found)
                changed = changed or checked is not item or key != json_name
                out[json_name] = checked
            return out if changed else value
        if isinstance(node, _Array):
            if not isinstance(value, list):
                return value
            items = [self._walk(item, node.item, f"{at}[{i}]", found)
                     for i, item in enumerate(value)]
            return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
        if isinstance(node, _Map):
            if not isinstance(value, dict):
                return value
            entries = {k: self._walk(item, node.value, f"{at}[{i}].value", found)
                       for i, (k, item) in enumerate(value.items())}
            return entries if any(entries[k] is not value[k] for k in value) else value
        if isinstance(node, _Enum):
            # Proto JSON takes an enum by name or by number.
            if isinstance(value, str) and value not in node.values:
                found.append((at, f"Invalid value at '{at}' (type.googleapis.com/"
                                  f"{self.enum_type(node.owner, node.field)}), "
                                  f"{json.dumps(value)}"))
        return value


# ---- the documents and enum names


def _documents() -> Path:
    spec = find_spec("googleapiclient")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("google-api-python-client is not installed: the local services "
                           "check request bodies against its discovery documents.")
    return Path(next(iter(spec.submodule_search_locations))) / "discovery_cache" / "documents"


def _aiplatform_enum(version: str):
    """The enum's proto name from the Vertex AI SDK's own descriptors (exact, nested
    enums included); the types are imported on the first refused value only."""
    package = f"google.cloud.aiplatform.{version}"

    def enum_type(schema: str, proto_field: str) -> str:
        message = re.sub(r"^GoogleCloudAiplatformV1(beta1)?", "", schema)
        try:
            import importlib

            from google.protobuf import descriptor_pool

            importlib.import_module(f"google.cloud.aiplatform_{version}.types")
            descriptor = descriptor_pool.Default().FindMessageTypeByName(f"{package}.{message}")
            return descriptor.fields_by_name[proto_field].enum_type.full_name
        except (ImportError, KeyError, AttributeError):
            return f"{package}.{message}"
    return enum_type


def _bigquery_enum(schema: str, proto_field: str) -> str:
    # BigQuery's protos are not installed; its enums are nested in their message.
    camel = "".join(part.title() for part in proto_field.split("_"))
    return f"google.cloud.bigquery.v2.{schema}.{camel}"


@cache
def api(name: str, version: str) -> Api:
    document = json.loads((_documents() / f"{name}.{version}.json").read_text())
    enum_type = _aiplatform_enum(version) if name == "aiplatform" else _bigquery_enum
    return Api(document, enum_type)


# ---- the front end: which prefixes are checked against which document


def register(router: Router, services) -> None:
    """Vertex AI (v1, v1beta1, Gen AI included) and BigQuery are proto-JSON front ends.
    Cloud Storage's JSON API is not checked: we found no statement that it refuses an
    unknown field."""
    for host in ("", "/aiplatform.googleapis.com"):  # google-genai's base URL has the host
        for version in ("v1", "v1beta1"):
            check_bodies(router, f"{host}/{version}/", "aiplatform", version, bad_request,
                         strip=host)
    check_bodies(router, "/bigquery/v2/", "bigquery", "v2",
                 lambda found: bad_request(found, errors_list=True))


def check_bodies(router: Router, prefix: str, name: str, version: str, error,
                 strip: str = "") -> None:
    """Checks the JSON body of every request under `prefix` (its path less `strip`)
    against the discovery document `name`.`version`; `error(violations)` makes the room's
    HttpError. A body that names fields by their proto names reaches the handler under
    their JSON names. The document is read on the first request, not at start-up."""

    def check(request: Request) -> None:
        if not request.body or "json" not in request.headers.get("content-type", "json"):
            return
        try:
            body = json.loads(request.body)
        except (ValueError, RecursionError):  # bad JSON: the handler answers it
            return
        try:
            found, canonical = api(name, version).check(request.method,
                                                        request.path[len(strip):], body)
        except RecursionError:
            raise HttpError(400, error_body(400, "INVALID_ARGUMENT", "Invalid JSON payload: "
                                            "nested too deeply.", "invalid")) from None
        if found:
            raise error(found)
        if canonical is not body:
            request.body = json.dumps(canonical).encode()
        if isinstance(canonical, dict):
            request.keep_parsed(canonical)

    router.add_body_check(prefix, check)


def bad_request(found: list[tuple[str, str]], errors_list: bool = False) -> HttpError:
    """Google's 400 for refused fields: the messages joined, one google.rpc.BadRequest
    field violation each (no `field` for the top level); BigQuery adds its errors[]."""
    message = "\n".join(description for _, description in found)
    violations = [{"field": at, "description": d} if at else {"description": d}
                  for at, d in found]
    error = {"code": 400, "message": message, "status": "INVALID_ARGUMENT",
             "details": [{"@type": BAD_REQUEST, "fieldViolations": violations}]}
    if errors_list:
        error["errors"] = [{"message": message, "domain": "global", "reason": "invalid"}]
    return HttpError(400, {"error": error})
