"""Helpers shared by the resource rooms: names, list filters, update masks, paging."""

from __future__ import annotations

import base64
import re

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
    try:
        start = int(base64.urlsafe_b64decode(page_token.encode()).decode()) if page_token else 0
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        raise errors.invalid(f"Invalid page token: {page_token!r}") from None
    if page_size and not (page_size.isascii() and page_size.isdigit()):
        raise errors.invalid(f"Invalid value at 'page_size' (TYPE_INT32), {page_size!r}")
    size = int(page_size or 0) or len(items) or 1
    chunk = items[start:start + size]
    answer: dict = {key: chunk}
    if start + size < len(items):
        answer["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return answer


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
