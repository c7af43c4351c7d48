"""URL pieces every local Vertex AI service's routes share.

The SDK addresses /v1/projects/P/locations/L/<collection>...; handlers work with the
parent name "projects/P/locations/L" and the query string as a flat dict. Routes are
registered for /v1/; serve_v1beta1 answers the same resources on /v1beta1/.
"""

from __future__ import annotations

import copy
from urllib.parse import unquote

from labkit.services.http import HttpError, Request, Router, error_body

PARENT = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"


def parent_of(r: Request) -> str:
    return f"projects/{r.params['project']}/locations/{r.params['location']}"


def query_of(r: Request) -> dict:
    return {k: v[0] for k, v in r.query.items()}


def refuse(feature: str):
    """A route for what only Vertex AI does: it answers the gcp_only error."""
    from labkit.vertex import errors

    def handler(r: Request):
        raise errors.gcp_only(feature)
    return handler


V1_TYPES = "type.googleapis.com/google.cloud.aiplatform.v1."
BETA_TYPES = "type.googleapis.com/google.cloud.aiplatform.v1beta1."
BETA = "/v1beta1/"


def serve_v1beta1(router: Router) -> None:
    """Serves every Vertex AI resource on /v1beta1/ as well as /v1/, as Vertex does.

    One route per method takes the whole /v1beta1/ prefix: a route registered for
    /v1beta1/ itself (Gen AI's) answers as it is; otherwise the request is answered by the
    /v1/ route of the same path, and the Any-typed fields of its answer ("@type" of
    operations' metadata and responses) name the v1beta1 messages the v1beta1 client
    unpacks. The HTTP layer's checks (guard, workspace secret, framing) have already run.
    """
    aliases: list = []

    def dispatch(r: Request):
        for path in (r.path, "/v1/" + r.path[len(BETA):]):
            for route in router.routes:
                if route in aliases or route.method != r.method:
                    continue
                m = route.pattern.match(path)
                if m:
                    r.params = {k: unquote(v) for k, v in m.groupdict().items()}
                    r.path = path
                    result = route.handler(r)
                    return result if path.startswith(BETA) else _beta_types(result)
        known = any(route.pattern.match(p) for route in router.routes if route not in aliases
                    for p in (r.path, "/v1/" + r.path[len(BETA):]))
        status, code = (405, "METHOD_NOT_ALLOWED") if known else (404, "NOT_FOUND")
        raise HttpError(status, error_body(
            status, code, f"The local services do not implement {r.method} {r.path}. "
                          f"It runs with LAB_BACKEND=gcp.", code.lower()))

    for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        router.add(method, BETA + r".*", dispatch)
        aliases.append(router.routes[-1])


def _beta_types(value):
    """The answer of a /v1/ route with v1 message types renamed to their v1beta1 twins."""
    from labkit.services.http import Response

    if isinstance(value, Response):
        if isinstance(value.body, (dict, list)):
            value = copy.copy(value)
            value.body = _beta_types(value.body)
        return value
    if isinstance(value, dict):
        return {k: _beta_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_beta_types(v) for v in value]
    if isinstance(value, str) and value.startswith(V1_TYPES):
        return BETA_TYPES + value[len(V1_TYPES):]
    return value
