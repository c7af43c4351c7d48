"""dlp.googleapis.com for both of the client's transports: gRPC, and REST
(`DlpServiceClient(transport="rest")`, which calls https://dlp.googleapis.com/v2/... through
`https_proxy` and trusts the workspace CA through `CURL_CA_BUNDLE`).

The proxy hands each tunnel for the host to `Front.serve`. It peeks at the TLS ClientHello:
a gRPC client offers ALPN "h2", and its bytes go on, untouched, to the gRPC server; any other
client is served HTTP/1.1 here, with the REST mappings of google/privacy/dlp/v2/dlp.proto
(POST /v2/{parent}/content:inspect, body "*", ...), the same Methods, Google's JSON error
shape and the workspace token checked.
"""

from __future__ import annotations

import hmac
import json
import re
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from labkit.dlp.inspection import DlpError
from labkit.services.grpc_server import UNAUTHENTICATED_MESSAGE
from labkit.services.http import MAX_BODY_BYTES, error_body, gcp_only_message

_PARENT = r"(?P<parent>projects/[^/]+(?:/locations/[^/]+)?)"
_JOB = r"(?P<name>projects/[^/]+(?:/locations/[^/]+)?/dlpJobs/[^/:]+)"
# (HTTP method, path pattern, RPC); the body, where there is one, is the whole request.
ROUTES = [
    ("POST", rf"/v2/{_PARENT}/content:inspect", "InspectContent"),
    ("POST", rf"/v2/{_PARENT}/content:deidentify", "DeidentifyContent"),
    ("POST", rf"/v2/{_PARENT}/content:reidentify", "ReidentifyContent"),
    ("GET", r"/v2/(?:(?P<parent>(?:projects/[^/]+/)?locations/[^/]+)/)?infoTypes",
     "ListInfoTypes"),
    ("POST", rf"/v2/{_PARENT}/dlpJobs", "CreateDlpJob"),
    ("GET", rf"/v2/{_PARENT}/dlpJobs", "ListDlpJobs"),
    ("GET", rf"/v2/{_JOB}", "GetDlpJob"),
    ("DELETE", rf"/v2/{_JOB}", "DeleteDlpJob"),
    ("POST", rf"/v2/{_JOB}:cancel", "CancelDlpJob"),
]
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "UNAUTHENTICATED": 401,
               "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "UNIMPLEMENTED": 501}


def offers_h2(hello: bytes) -> bool:
    """Whether a TLS ClientHello offers ALPN "h2" (RFC 8446 4.1.2, RFC 7301). A malformed or
    partial hello is not h2 (it is then answered, or refused, by the TLS handshake here)."""
    try:
        if hello[0] != 0x16 or hello[5] != 0x01:
            return False
        at = 9 + 2 + 32  # record header, handshake header, version, random
        at += 1 + hello[at]  # session id
        at += 2 + int.from_bytes(hello[at:at + 2])  # cipher suites
        at += 1 + hello[at]  # compression methods
        end = at + 2 + int.from_bytes(hello[at:at + 2])
        at += 2
        while at + 4 <= end:
            kind, size = int.from_bytes(hello[at:at + 2]), int.from_bytes(hello[at + 2:at + 4])
            if kind == 16:  # application_layer_protocol_negotiation
                names, i = hello[at + 6:at + 4 + size], 0
                while i < len(names):
                    if names[i + 1:i + 1 + names[i]] == b"h2":
                        return True
                    i += 1 + names[i]
                return False
            at += 4 + size
    except IndexError:
        return False
    return False


def _types():
    from google.cloud import dlp_v2

    return {"InspectContent": dlp_v2.InspectContentRequest,
            "DeidentifyContent": dlp_v2.DeidentifyContentRequest,
            "ReidentifyContent": dlp_v2.ReidentifyContentRequest,
            "ListInfoTypes": dlp_v2.ListInfoTypesRequest,
            "CreateDlpJob": dlp_v2.CreateDlpJobRequest,
            "ListDlpJobs": dlp_v2.ListDlpJobsRequest,
            "GetDlpJob": dlp_v2.GetDlpJobRequest, "DeleteDlpJob": dlp_v2.DeleteDlpJobRequest,
            "CancelDlpJob": dlp_v2.CancelDlpJobRequest}


class Front:
    def __init__(self, methods, token: str, grpc_port: int, cert_file: str, key_file: str):
        self.methods, self.grpc_port = methods, grpc_port
        self.expected = f"Bearer {token}".encode()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file, key_file)
        self.context.set_alpn_protocols(["http/1.1"])
        self.types = _types()

    def serve(self, client: socket.socket, host: str) -> None:
        """One tunnelled connection (in the proxy's thread for it)."""
        from labkit.services.proxy import _pipe

        client.settimeout(60)
        try:
            hello = client.recv(16384, socket.MSG_PEEK)
        except OSError:
            client.close()
            return
        if offers_h2(hello):
            client.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", self.grpc_port))
            threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
            _pipe(client, upstream)
            return
        try:
            tls = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        try:
            _Handler(tls, self)
        except OSError:
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def call(self, verb: str, target: str, body: bytes, authorization: str):
        """(HTTP status, JSON text) for one REST request."""
        from google.protobuf import json_format

        if not hmac.compare_digest(authorization.encode(), self.expected):
            return 401, _error("UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE)
        split = urlsplit(target)
        rpc, m = next(((rpc, m) for method, pattern, rpc in ROUTES if method == verb
                       and (m := re.fullmatch(pattern, split.path))), (None, None))
        if rpc is None and split.path.startswith("/v2/"):
            return 501, _error("UNIMPLEMENTED", gcp_only_message(
                f"{verb} {split.path}", "Sensitive Data Protection"))
        if rpc is None:
            return 404, _error("NOT_FOUND", f"{verb} {split.path} was not found.")
        request_type = self.types[rpc]
        try:
            fields = json.loads(body or b"{}")
            if not isinstance(fields, dict):
                raise ValueError("the request body must be a JSON object")
            for key, value in parse_qsl(split.query):
                if not key.startswith("$"):  # $alt=json;enum-encoding=int
                    fields[key] = value
            fields.update({k: v for k, v in m.groupdict().items() if v is not None})
            request = request_type.from_json(json.dumps(fields))
        except (ValueError, json_format.ParseError) as e:
            return 400, _error("INVALID_ARGUMENT", f"Invalid JSON payload received. {e}")
        try:
            response = getattr(self.methods, rpc)(request)
        except DlpError as e:
            return HTTP_STATUS.get(e.code, 400), _error(e.code, e.message)
        if hasattr(type(response), "to_json"):
            return 200, type(response).to_json(response)
        return 200, json_format.MessageToJson(response)


def _error(code: str, message: str) -> str:
    return json.dumps(error_body(HTTP_STATUS.get(code, 400), code, message))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60

    def __init__(self, sock, front: Front):
        self.front = front
        super().__init__(sock, ("127.0.0.1", 0), None)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_BODY_BYTES:
            status, text = 400, _error("INVALID_ARGUMENT", f"invalid Content-Length {length}")
            self.close_connection = True
        else:
            body = self.rfile.read(length)
            status, text = self.front.call(self.command, self.path, body,
                                           self.headers.get("Authorization", ""))
        data = text.encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    do_GET = do_POST = do_DELETE = do_PATCH = _serve
