"""Helpers shared by the resource rooms: names, list filters, update masks, paging."""

from __future__ import annotations

import re

from labkit.services.paging import BadPage, page_of
from labkit.vertex import errors

FILTER_CLAUSE = re.compile(r'\s*(?P<field>[a-z_.A-Z0-9-]+)\s*(?P<op>=|!=)\s*'
                           r'(?P<value>"[^"]*"|\S+)\s*')


def matches_filter(resource: dict, text: str | None) -> bool:
    """The subset of AIP-160 filters the SDK sends: display_name="x", labels.k="v", AND."""
    if not text:
        return True
    for clause in re.split(r"\s+AND\s+", text.strip()):
        m = FILTER_CLAUSE.fullmatch(clause)
        if not m:
            raise errors.invalid(f"Unsupported filter: {clause!r}. The local Vertex AI filters "
                                 f"on display_name and labels.KEY.")
        field, value = m["field"], m["value"].strip('"')
        if field in ("display_name", "displayName"):
            actual = resource.get("displayName")
        elif field.startswith("labels."):
            actual = (resource.get("labels") or {}).get(field[7:])
        elif field == "state":
            actual = resource.get("state")
        else:
            raise errors.invalid(f"Unsupported filter field: {field!r}.")
        if (actual == value) != (m["op"] == "="):
            return False
    return True


def page(items: list[dict], key: str, page_size: str | None, page_token: str | None) -> dict:
    """{key: the page, nextPageToken}; no page size means all (as the SDK's pager expects)."""
    try:
        chunk, token = page_of(items, page_size, page_token, len(items) or 1)
    except BadPage as exc:
        raise errors.invalid(str(exc)) from None
    return {key: chunk, **({"nextPageToken": token} if token else {})}


def apply_mask(resource: dict, body: dict, mask: str | None, allowed: set[str]) -> dict:
    """PATCH with updateMask (snake_case or camelCase paths) over allowed top-level fields."""
    fields = [f.strip() for f in (mask or "").split(",") if f.strip()] or list(body)
    for field in fields:
        camel = re.sub(r"_([a-z])", lambda m: m[1].upper(), field)
        if camel not in allowed:
            raise errors.invalid(f"Updating {field} is not supported.")
        if camel in body:
            resource[camel] = body[camel]
        else:
            resource.pop(camel, None)
    return resource
