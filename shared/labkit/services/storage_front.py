"""Cloud Storage under Google's own hostnames, for code that hard-codes them.

TensorFlow's gs:// file system (tf.io.gfile, model.save("gs://..."), TFRecordDataset)
calls https://www.googleapis.com/storage/v1/... (metadata, listings, deletes, rewrites),
https://www.googleapis.com/upload/storage/v1/... (resumable uploads) and
https://storage.googleapis.com/BUCKET/OBJECT (ranged reads), and honours no emulator
variable. labkit.services.proxy hands CONNECT tunnels for those hosts to this front: it
terminates TLS with the workspace CA's certificate and forwards each request to the local
Cloud Storage routes of this services process, with the caller's own Authorization header.
So the local routes' policy decides: only this workspace's token is accepted (TensorFlow
sends it from GOOGLE_AUTH_TOKEN_FOR_TESTING, which labkit.services.clients sets). Links in
answers (resumable session URLs) name the Google host again, so they come back here.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, quote, unquote, urlsplit

from labkit.services.http import MAX_BODY_BYTES, error_body
from labkit.workspace import Workspace

JSON_API = ("/storage/v1/", "/upload/storage/v1/", "/download/storage/v1/")
# Beam's BigQuery I/O calls https://bigquery.googleapis.com/bigquery/v2/ (its apitools
# client, no emulator switch): forwarded to the local BigQuery routes the same way.
BIGQUERY_HOST = "bigquery.googleapis.com"
BIGQUERY_API = ("/bigquery/v2/", "/upload/bigquery/v2/")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "host", "content-length"}
IDLE_TIMEOUT_S = 60


class Front:
    def __init__(self, workspace: Workspace, endpoint: str, cert_file: str, key_file: str):
        split = urlsplit(endpoint)
        self.upstream = (split.hostname, split.port)
        self.base = f"{split.scheme}://{split.netloc}"
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file, key_file)

    def serve(self, client, host: str) -> None:
        """Serves one tunnelled connection for `host` (in the proxy's thread for it)."""
        client.settimeout(IDLE_TIMEOUT_S)
        try:
            tls = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        try:
            _Handler(tls, self, host)
        except OSError:
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    @staticmethod
    def local_path(host: str, method: str, target: str) -> str | None:
        """The local route for a request to Google's `host`, or None if not served."""
        path, _, query = target.partition("?")
        if host == BIGQUERY_HOST:
            return target if path.startswith(BIGQUERY_API) else None
        if path.startswith(JSON_API):
            return target
        if host == "storage.googleapis.com" and method in ("GET", "HEAD"):
            bucket, _, name = path.lstrip("/").partition("/")
            if bucket and name:  # the XML API's media URL: a (ranged) read
                extra = "&".join(p for p in query.split("&") if p.startswith("generation="))
                return (f"/download/storage/v1/b/{bucket}/o/{quote(unquote(name), safe='')}"
                        f"?alt=media" + (f"&{extra}" if extra else ""))
        return None


def _folder_marker(method: str, path: str, body: bytes) -> dict | None:
    """TensorFlow makes a folder (tf.io.gfile.makedirs, and SavedModel's variables/) by
    uploading an empty object named 'folder/'. The local Cloud Storage keeps objects as
    files and has no such placeholder objects: a folder exists there while something is
    in it. The upload is answered as Cloud Storage answers it, and nothing is stored."""
    route, _, query = path.partition("?")
    m = re.fullmatch(r"/upload/storage/v1/b/([^/]+)/o", route)
    params = parse_qs(query)
    name = (params.get("name") or [""])[0]
    if method != "POST" or not m or body or not name.endswith("/") or \
            (params.get("uploadType") or ["media"])[0] != "media":
        return None
    return {"kind": "storage#object", "bucket": unquote(m[1]), "name": name, "size": "0",
            "generation": "1", "metageneration": "1", "contentType": "application/octet-stream"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S

    def __init__(self, sock, front: Front, host: str):
        self.front, self.google_host, self.conn = front, host, None
        super().__init__(sock, ("127.0.0.1", 0), None)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def __getattr__(self, name: str):
        if name.startswith("do_"):
            return self._forward
        raise AttributeError(name)

    def _forward(self) -> None:
        path = Front.local_path(self.google_host, self.command, self.path)
        try:
            body = self._body()
        except ValueError as exc:
            self.close_connection = True
            return self._reply(400, {"Content-Type": "application/json", "Connection": "close"},
                               json.dumps(error_body(400, "INVALID_ARGUMENT", str(exc),
                                                     "invalid")).encode())
        if path is None:
            message = (f"{self.command} https://{self.google_host}{self.path.split('?')[0]} "
                       f"is not served by the local services; it runs with "
                       f"LAB_BACKEND=gcp.")
            return self._reply(404, {"Content-Type": "application/json"},
                               json.dumps(error_body(404, "NOT_FOUND", message)).encode())
        marker = _folder_marker(self.command, path, body)
        if marker is not None:
            return self._reply(200, {"Content-Type": "application/json"},
                               json.dumps(marker).encode())
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = f"{self.front.upstream[0]}:{self.front.upstream[1]}"
        headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed
            if self.conn is None:
                self.conn = http.client.HTTPConnection(*self.front.upstream, timeout=300)
            try:
                self.conn.request(self.command, path, body, headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        google = f"https://{self.google_host}".encode()
        media = path.startswith("/download/") or "alt=media" in path
        if not media:  # links in resources; an object's own bytes are never rewritten
            data = data.replace(self.front.base.encode(), google)
        out = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
        if "Location" in out:
            out["Location"] = out["Location"].replace(self.front.base, google.decode())
        self._reply(response.status, out, data)

    def _body(self) -> bytes:
        """The request body; malformed framing or one over the local limit raises
        ValueError (answered 400 by _forward)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while size := int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16):
                total += size
                if size < 0 or total > MAX_BODY_BYTES:
                    raise ValueError("invalid or oversized chunk")
                chunks.append(self.rfile.read(size))
                self.rfile.read(2)
            while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ValueError(f"invalid Content-Length {length}")
        return self.rfile.read(length)

    def _reply(self, status: int, headers: dict, data: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def finish(self) -> None:
        super().finish()
        if self.conn is not None:
            self.conn.close()
