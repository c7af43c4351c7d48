"""The upload protocol Google's JSON APIs share (Cloud Storage objects, BigQuery load jobs):
multipart/related bodies (a JSON metadata part and a media part) and the Content-Range
header of resumable uploads. Parsing only; each room keeps its own sessions."""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from dataclasses import dataclass

RANGE = re.compile(r"bytes (?:\*|(\d+)-(\d+))/(\*|\d+)")


class BadUpload(ValueError):
    """A malformed upload; rooms answer it as a 400 in their own error shape."""


@dataclass
class Multipart:
    metadata: dict
    media: bytes
    media_type: str | None  # the media part's Content-Type


def multipart_related(content_type: str, body: bytes) -> Multipart:
    raw = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace") + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = list(message.iter_parts()) if message.is_multipart() else []
    if len(parts) != 2:
        raise BadUpload("A multipart upload needs a metadata part and a media part; got "
                        f"{len(parts)} parts.")
    try:
        metadata = json.loads(parts[0].get_payload(decode=True) or b"{}")
    except (ValueError, RecursionError) as exc:
        raise BadUpload(f"Invalid JSON in the metadata part: {exc}") from None
    if not isinstance(metadata, dict):
        raise BadUpload("The metadata part must be a JSON object.")
    media_type = parts[1].get_content_type() if parts[1].get("content-type") else None
    return Multipart(metadata, parts[1].get_payload(decode=True) or b"", media_type)


def content_range(header: str | None) -> tuple[int | None, int | None]:
    """'bytes 0-99/200' -> (0, 200); 'bytes 0-99/*' -> (0, None); 'bytes */200' (a query
    or the final empty chunk) -> (None, 200); no header -> (None, None)."""
    if not header:
        return None, None
    m = RANGE.fullmatch(header.strip())
    if not m:
        raise BadUpload(f"Invalid Content-Range: {header}")
    first = int(m[1]) if m[1] is not None else None
    return first, (None if m[3] == "*" else int(m[3]))
