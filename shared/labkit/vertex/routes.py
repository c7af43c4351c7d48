"""URL pieces every local Vertex AI service's routes share.

The SDK addresses /v1/projects/P/locations/L/<collection>...; handlers work with the
parent name "projects/P/locations/L" and the query string as a flat dict.
"""

from __future__ import annotations

from labkit.services.http import Request

PARENT = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"


def parent_of(r: Request) -> str:
    return f"projects/{r.params['project']}/locations/{r.params['location']}"


def query_of(r: Request) -> dict:
    return {k: v[0] for k, v in r.query.items()}
