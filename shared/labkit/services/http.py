"""The HTTP layer every local service shares: routing, JSON, and the local-only guard.

One threaded server on 127.0.0.1 hosts all local services; their URL prefixes do not
overlap (/bigquery/v2, /storage/v1, /v1/projects/...), exactly as the real client
libraries address them. Services add routes; they never see a socket.

The layer's policies hold for every service:
- Who may call: the Host/Origin guard, then the workspace secret, as a Bearer token or,
  for clients that send no credentials to an emulator (google-cloud-storage), as a path
  prefix /labkit-key/<key>/ that STORAGE_EMULATOR_HOST carries. Both are checked before
  the body is read.
- Bad framing (Content-Length, chunked encoding, a body that never arrives) is a 400 or
  a closed connection; a handler never sees half a body.
- An unexpected exception in a handler is a bug: it answers 501, which no Google client
  retries (they retry 500/503 for minutes), with a message that names the bug.
- Idle keep-alive connections are closed after IDLE_TIMEOUT_S.
"""

from __future__ import annotations

import hmac
import json
import re
import socket
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
KEY_PREFIX = "/labkit-key/"  # /labkit-key/<workspace path key>/rest-of-path
MAX_BODY_BYTES = 1 << 30  # one request body held in memory; uploads above go resumable
IDLE_TIMEOUT_S = 60
LISTEN_BACKLOG = 128


def gcp_only_message(feature: str, service: str) -> str:
    """The one wording for what a local service does not do: it names the feature and
    where it runs (each room wraps it in its own error shape)."""
    return f"{feature} is not available on the local {service}; it runs with LAB_BACKEND=gcp."


def error_body(status: int, code: str, message: str, reason: str | None = None) -> dict:
    """The error shape every Google JSON API shares closely enough for all our clients:
    google.rpc.Status fields plus the legacy errors[] list BigQuery and Storage read."""
    return {"error": {"code": status, "message": message, "status": code,
                      "errors": [{"message": message, "domain": "global",
                                  "reason": reason or code.lower()}]}}


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
    base_url: str = "http://127.0.0.1"  # how the caller reached us (with its key prefix)
    _parsed: dict | None = field(default=None, repr=False, compare=False)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def keep_parsed(self, value: dict) -> None:
        """The body as a body check already parsed it: the next json() returns it rather
        than parsing the bytes again (a large predict body costs milliseconds)."""
        self._parsed = value

    def json(self) -> dict:
        if self._parsed is not None:
            value, self._parsed = self._parsed, None  # once: later calls parse afresh
            return value
        if not self.body:
            return {}
        try:
            value = json.loads(self.body)
        except RecursionError:
            raise HttpError(400, error_body(400, "INVALID_ARGUMENT", "Invalid JSON payload: "
                                            "nested too deeply.", "invalid")) from None
        except ValueError as exc:
            raise HttpError(400, error_body(400, "INVALID_ARGUMENT",
                                            f"Invalid JSON payload: {exc}", "invalid")) from exc
        if not isinstance(value, dict):
            raise HttpError(400, error_body(400, "INVALID_ARGUMENT", "Expected a JSON object",
                                            "invalid"))
        return value

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        """A non-negative integer query parameter; a 400 for anything else."""
        value = self.arg(name)
        if value in (None, ""):
            return default
        if not value.isascii() or not value.isdigit():
            raise HttpError(400, error_body(400, "INVALID_ARGUMENT",
                                            f"Invalid value for {name}: {value!r}", "invalid"))
        return int(value)


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


class StreamedResponse(Response):
    """A response sent as its chunks come (server-sent events), with HTTP/1.1 chunked
    encoding. The first chunk is taken before anything is sent, so an error up to then is
    still an ordinary JSON error; a failure after it can only cut the stream short (the
    connection closes without the last chunk, which clients report as a broken stream).
    A client that hangs up closes the iterator, so a generator can stop its work."""

    def __init__(self, chunks: Iterable[bytes], headers: dict[str, str] | None = None,
                 status: int = 200):
        super().__init__(status, None, headers or {})
        self.chunks = iter(chunks)
        self.first: bytes | None = None

    def prime(self) -> None:
        self.first = next(self.chunks, b"")

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close:
            close()


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
        self.body_checks: list[tuple[str, Callable[[Request], None]]] = []

    def add(self, method: str, pattern: str, handler: Handler, *, needs_token: bool = True) -> None:
        self.routes.append(Route(method.upper(), re.compile(pattern + r"\Z"), handler, needs_token))

    def add_body_check(self, prefix: str, check: Callable[[Request], None]) -> None:
        """`check(request)` runs on every request under `prefix` once its body is read and
        before its handler (a room's front-end check: services.discovery); it raises
        HttpError to refuse."""
        self.body_checks.append((prefix, check))

    def check_body(self, request: Request) -> None:
        for prefix, check in self.body_checks:
            if request.path.startswith(prefix):
                check(request)

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


class _Disconnected(Exception):
    """The client went away before its request arrived whole: nothing to answer."""


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG  # the standard library's 5 stalls bursts of connects

    def __init__(self, router: Router, token: str, path_key: str | None = None, port: int = 0):
        self.router = router
        self.token = token
        self.path_key = path_key
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S  # a socket idle this long (between or within requests) is closed

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY every response waits ~40 ms on Nagle + delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def __getattr__(self, name: str):
        # Every method (OPTIONS, TRACE, made-up ones) is routed, so each gets a JSON 404/405
        # instead of the standard library's HTML 501.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """The standard library's own refusals (bad request line, oversized headers) in JSON."""
        self.close_connection = True
        status = code if 400 <= code < 500 else 400
        try:
            self._send(Response(status, error_body(status, "INVALID_ARGUMENT",
                                                   message or "Bad request", "invalid"),
                                {"Connection": "close"}))
        except OSError:
            pass

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=b"",
        )
        try:
            response = self._handle(request)
            if isinstance(response, StreamedResponse):
                response.prime()
        except _Disconnected:
            self.close_connection = True
            return
        except HttpError as exc:
            response = Response(exc.status, exc.body, exc.headers)
        except Exception as exc:  # noqa: BLE001 - a bug in a service must not take the server down
            traceback.print_exc(file=sys.stderr)
            response = Response(501, error_body(
                501, "INTERNAL", f"Internal error in the local service (a labkit bug, not your "
                                 f"code; please report it): {type(exc).__name__}: {exc}. "
                                 f"The service keeps running.", "internalBug"))
        if self._body_pending:  # answered before reading the body: the socket is out of step
            self.close_connection = True
            response.headers["Connection"] = "close"
        try:
            if isinstance(response, StreamedResponse) and response.first is not None:
                self._send_stream(response)
            else:
                self._send(response)
        except OSError:  # the client hung up; nothing more to do
            self.close_connection = True

    # ---- the request, in the order it is checked

    def _handle(self, request: Request) -> Response:
        self._body_pending = bool(self.headers.get("Content-Length", "0").strip() not in ("", "0")
                                  or "chunked" in self.headers.get("Transfer-Encoding", "").lower())
        refusal = self._refusal(request)
        if refusal:
            raise HttpError(403, error_body(403, "PERMISSION_DENIED", refusal, "forbidden"))
        keyed = self._strip_path_key(request)
        route, params, path_known = self.server.router.match(request.method, request.path)
        if route is None:
            status = 405 if path_known else 404
            message = (f"The local services do not implement {request.method} {request.path}. "
                       f"It runs with LAB_BACKEND=gcp.")
            code = "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED"
            raise HttpError(status, error_body(status, code, message, code.lower()))
        if route.needs_token and not (keyed or self._has_token(request)):
            raise HttpError(401, error_body(401, "UNAUTHENTICATED",
                                            "Missing or wrong workspace token. Call "
                                            "labkit.start() before creating clients.",
                                            "required"))
        request.body = self._read_body()
        request.params = params
        self.server.router.check_body(request)
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

    def _strip_path_key(self, request: Request) -> bool:
        """True if the path starts with this workspace's key (removed from request.path)."""
        request.base_url = f"http://{request.headers.get('host', '127.0.0.1')}"
        if not request.path.startswith(KEY_PREFIX):
            return False
        key, _, rest = request.path[len(KEY_PREFIX):].partition("/")
        if not self.server.path_key or not hmac.compare_digest(key, self.server.path_key):
            raise HttpError(401, error_body(401, "UNAUTHENTICATED",
                                            "Wrong workspace key in the URL. Call "
                                            "labkit.start() before creating clients.",
                                            "required"))
        request.path = "/" + rest
        request.base_url += KEY_PREFIX + key
        return True

    def _has_token(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return hmac.compare_digest(auth.encode(), f"Bearer {self.server.token}".encode())

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._read_chunked()
        else:
            raw = (self.headers.get("Content-Length") or "0").strip()
            if not raw.isascii() or not raw.isdigit():
                raise self._bad_framing(f"Invalid Content-Length: {raw!r}")
            length = int(raw)
            if length > MAX_BODY_BYTES:
                raise self._bad_framing(f"Request body of {length} bytes is over the local "
                                        f"limit of {MAX_BODY_BYTES}; upload in resumable "
                                        f"chunks.", 413)
            body = self._read_exactly(length)
        self._body_pending = False
        return body

    def _bad_framing(self, message: str, status: int = 400) -> HttpError:
        self.close_connection = True
        return HttpError(status, error_body(status, "INVALID_ARGUMENT", message, "invalid"),
                         {"Connection": "close"})

    def _read_exactly(self, length: int) -> bytes:
        try:
            body = self.rfile.read(length) if length else b""
        except OSError as exc:  # includes the idle timeout
            raise _Disconnected from exc
        if len(body) != length:  # the client hung up mid-body: never act on half a request
            raise _Disconnected
        return body

    def _read_chunked(self) -> bytes:
        chunks, total = [], 0
        while True:
            try:
                line = self.rfile.readline(1024)
            except OSError as exc:
                raise _Disconnected from exc
            if not line:
                raise _Disconnected
            try:
                size = int(line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                raise self._bad_framing("Invalid chunked encoding.") from None
            if size < 0 or total + size > MAX_BODY_BYTES:
                raise self._bad_framing("Invalid or oversized chunk.", 413 if size > 0 else 400)
            if size == 0:
                self._read_exactly(2)
                return b"".join(chunks)
            chunks.append(self._read_exactly(size))
            total += size
            self._read_exactly(2)

    def _send(self, response: Response) -> None:
        payload, content_type = response.encode()
        if self.command == "HEAD":
            payload = b""
        headers = {"Content-Type": content_type, **response.headers,
                   "Content-Length": str(len(payload))}
        self.wfile.write(self._head(response.status, headers) + payload)
        self.wfile.flush()

    def _send_stream(self, response: StreamedResponse) -> None:
        headers = {"Content-Type": "application/octet-stream", **response.headers,
                   "Transfer-Encoding": "chunked"}
        try:
            self.wfile.write(self._head(response.status, headers))
            chunk = response.first
            while True:
                if chunk:  # an empty chunk would end the stream
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                try:
                    chunk = next(response.chunks)
                except StopIteration:
                    break
                except Exception:  # noqa: BLE001 - too late for an error answer: cut it short
                    traceback.print_exc(file=sys.stderr)
                    self.close_connection = True
                    return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            response.close()

    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        # Headers are Latin-1 on the wire; a value that is not (a stored contentType in
        # Chinese, say) is sent percent-encoded rather than dropping the connection.
        lines = [f"{self.protocol_version} {status} "
                 f"{self.responses.get(status, ('',))[0]}\r\n".encode("latin-1")]
        for name, value in headers.items():
            value = str(value).replace("\r", " ").replace("\n", " ")
            try:
                encoded = value.encode("latin-1")
            except UnicodeEncodeError:
                encoded = quote(value, safe=" /;=,+-_.*:@()").encode("latin-1")
            lines.append(f"{name}: ".encode("latin-1") + encoded + b"\r\n")
        lines.append(b"\r\n")
        if headers.get("Connection") == "close":
            self.close_connection = True
        return b"".join(lines)

    _body_pending = False
