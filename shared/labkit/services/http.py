"""The HTTP layer every local service shares: routing, JSON, and the local-only guard.

One threaded server on 127.0.0.1 hosts all local services; their URL prefixes do not
overlap (/bigquery/v2, /storage/v1, /v1/projects/...), exactly as the real client
libraries address them. Services add routes; they never see a socket.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


class HttpError(Exception):
    """Raised by a handler to answer with `status` and a body in its service's error shape."""

    def __init__(self, status: int, body: dict | str, headers: dict | None = None):
        super().__init__(body if isinstance(body, str) else json.dumps(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> dict:
        if not self.body:
            return {}
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise HttpError(400, {"error": {"code": 400, "message": f"Invalid JSON payload: {exc}",
                                            "status": "INVALID_ARGUMENT"}}) from exc
        if not isinstance(value, dict):
            raise HttpError(400, {"error": {"code": 400, "message": "Expected a JSON object",
                                            "status": "INVALID_ARGUMENT"}})
        return value


@dataclass
class Response:
    status: int = 200
    body: bytes | dict | list | str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", self.headers.get("Content-Type", "application/json")
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain; charset=utf-8")
        return json.dumps(self.body).encode(), "application/json; charset=UTF-8"


Handler = Callable[[Request], "Response | dict | list | None"]


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: Handler
    needs_token: bool


class Router:
    """Method + path regex -> handler. The first matching route wins."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler, *, needs_token: bool = True) -> None:
        self.routes.append(Route(method.upper(), re.compile(pattern + r"\Z"), handler, needs_token))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """Returns (route, params, path_known). path_known tells 404 from 405."""
        path_known = False
        for route in self.routes:
            m = route.pattern.match(path)
            if m:
                path_known = True
                if route.method == method:
                    return route, {k: unquote(v) for k, v in m.groupdict().items()}, True
        return None, {}, path_known


def _is_local_origin(origin: str) -> bool:
    host = urlsplit(origin).hostname or ""
    return host in {"127.0.0.1", "localhost", "::1"}


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, router: Router, token: str, port: int = 0):
        self.router = router
        self.token = token
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY every response waits ~40 ms on Nagle + delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            response = self._handle(request)
        except HttpError as exc:
            response = Response(exc.status, exc.body, exc.headers)
        except Exception as exc:  # a bug in a service must not take the server down
            traceback.print_exc(file=sys.stderr)
            response = Response(500, {"error": {"code": 500, "status": "INTERNAL",
                                                "message": f"Internal error in the local service: "
                                                           f"{type(exc).__name__}: {exc}"}})
        self._send(response)

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _handle(self, request: Request) -> Response:
        refusal = self._refusal(request)
        if refusal:
            raise HttpError(403, {"error": {"code": 403, "status": "PERMISSION_DENIED",
                                            "message": refusal}})
        route, params, path_known = self.server.router.match(request.method, request.path)
        if route is None:
            status = 405 if path_known else 404
            message = (f"The local services do not implement {request.method} {request.path}. "
                       f"It runs with LAB_BACKEND=gcp.")
            code = "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED"
            raise HttpError(status, {"error": {"code": status, "status": code, "message": message}})
        if route.needs_token and not self._has_token(request):
            raise HttpError(401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                            "message": "Missing or wrong workspace token. Call "
                                                       "labkit.start() before creating clients."}})
        request.params = params
        result = route.handler(request)
        if isinstance(result, Response):
            return result
        return Response(200, result if result is not None else {})

    def _refusal(self, request: Request) -> str | None:
        host = request.headers.get("host", "")
        hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        if hostname not in LOCAL_HOSTS:
            return f"Host {host!r} is not local; the local services answer 127.0.0.1 only."
        origin = request.headers.get("origin")
        if origin and not _is_local_origin(origin):
            return f"Origin {origin!r} is not local."
        if request.headers.get("sec-fetch-site") == "cross-site":
            return "Cross-site browser requests are refused."
        return None

    def _has_token(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth == f"Bearer {self.server.token}"

    def _send(self, response: Response) -> None:
        payload, content_type = response.encode()
        if self.command == "HEAD":
            payload = b""
        self.send_response(response.status)
        headers = {"Content-Type": content_type, **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch
