"""Cloud Storage's JSON API batch endpoint: POST /batch/storage/v1.

The body is multipart/mixed; each part (Content-Type: application/http) is one request to
the JSON API (`DELETE /storage/v1/b/B/o/O HTTP/1.1`, headers, body), answered in the same
order by one multipart/mixed response whose parts carry each inner response
(`HTTP/1.1 204 No Content`, headers, body) with Content-ID `<response-ID>` for a request's
Content-ID `<ID>`. At most 100 requests per batch. (cloud.google.com/storage/docs/batch)
Beam's gcsio deletes and copies through it (google-cloud-storage's Batch).

Each inner request runs through the same routes as a single call, with the batch's own
authentication: the outer request was already checked by the HTTP layer.
"""

from __future__ import annotations

import email.parser
import email.policy
import secrets
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from labkit.services.http import KEY_PREFIX, HttpError, Request, Response, Router, error_body

MAX_CALLS = 100


def _bad(message: str) -> HttpError:
    return HttpError(400, error_body(400, "INVALID_ARGUMENT", message, "invalid"))


def _parts(request: Request) -> list[tuple[str | None, bytes]]:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/mixed"):
        raise _bad("A batch request must be multipart/mixed.")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.body)
    if not message.is_multipart():
        raise _bad("The batch request has no parts.")
    parts = []
    for part in message.iter_parts():
        if part.get_content_type() != "application/http":
            raise _bad("Each part of a batch request must be application/http.")
        parts.append((part.get("Content-ID"), part.get_payload(decode=True) or b""))
    if len(parts) > MAX_CALLS:
        raise _bad(f"A batch request can hold at most {MAX_CALLS} calls; this one has "
                   f"{len(parts)}.")
    return parts


def _inner(outer: Request, raw: bytes) -> Request:
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode("latin-1").split("\n")
    words = lines[0].split()
    if len(words) != 3 or not words[2].startswith("HTTP/"):
        raise _bad(f"Invalid request line in a batch part: {lines[0]!r}")
    url = urlsplit(words[1])
    path = url.path
    if path.startswith(KEY_PREFIX):  # the client's base URL carries the workspace key
        path = "/" + path[len(KEY_PREFIX):].partition("/")[2]
    if not path.startswith("/storage/v1/"):
        raise _bad(f"A batch part must call the JSON API (/storage/v1/...), not {path!r}.")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(method=words[0].upper(), path=path,
                   query=parse_qs(url.query, keep_blank_values=True), headers=headers,
                   body=body.rstrip(b"\n") if body.strip() else b"", base_url=outer.base_url)


def _answer(router: Router, request: Request) -> Response:
    route, params, known = router.match(request.method, request.path)
    if route is None:
        status = 405 if known else 404
        return Response(status, error_body(status, "NOT_FOUND", f"{request.method} "
                                           f"{request.path} is not served by the local "
                                           f"Cloud Storage."))
    request.params = params
    try:
        result = route.handler(request)
    except HttpError as exc:
        return Response(exc.status, exc.body, exc.headers)
    return result if isinstance(result, Response) else Response(
        200, result if result is not None else {})


def handle(router: Router, request: Request) -> Response:
    boundary = f"batch_{secrets.token_hex(12)}"
    out = []
    for content_id, raw in _parts(request):
        try:
            inner = _inner(request, raw)
            response = _answer(router, inner)
        except HttpError as exc:
            response = Response(exc.status, exc.body, exc.headers)
        body, media = response.encode()
        if response.status == 204:
            body = b""
        reason = HTTPStatus(response.status).phrase if response.status in \
            HTTPStatus._value2member_map_ else ""
        head = [f"--{boundary}", "Content-Type: application/http"]
        if content_id:
            head.append(f"Content-ID: <response-{content_id.strip('<>')}>")
        head += ["", f"HTTP/1.1 {response.status} {reason}",
                 f"Content-Type: {media}", f"Content-Length: {len(body)}", "", ""]
        out.append("\r\n".join(head).encode() + body + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return Response(200, b"".join(out), {"Content-Type": f"multipart/mixed; boundary={boundary}"})


def register(router: Router, services) -> None:
    """The batch route: it answers through the routes the storage room registered."""
    router.add("POST", r"/batch/storage/v1", lambda r: handle(router, r))
