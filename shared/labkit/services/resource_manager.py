"""A Cloud Resource Manager stand-in for the one call PipelineJob.submit() makes.

submit() checks that an existing pipeline-root bucket belongs to the project by asking
Cloud Resource Manager for the project number over gRPC (cloudresourcemanager.googleapis.com,
no endpoint switch). Offline that call retries for 60 s and then fails. gRPC honours
`grpc_proxy` and `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`, so a notebook whose environment has
`client_environment()` reaches this stand-in: a CONNECT proxy that tunnels only that host
to a local TLS gRPC server answering Projects.GetProject, with a certificate from a
workspace CA. Nothing else is intercepted: other hosts get 403 from the proxy.
"""

from __future__ import annotations

import datetime
import json
import socket
import threading
from concurrent import futures

from labkit.services.files import write_atomic
from labkit.services.http import Router
from labkit.workspace import Workspace

HOSTS = {"cloudresourcemanager.googleapis.com"}
# Local Cloud Storage reports projectNumber "0" for the buckets of the local project, so the
# SDK's ownership check compares equal numbers.
PROJECT_NUMBER = "0"


def _certificates(workspace: Workspace) -> tuple[bytes, bytes, str]:
    """(server key PEM, server cert PEM, CA file path), made once per workspace."""
    folder = workspace.path("auth", "resource-manager")
    folder.mkdir(parents=True, exist_ok=True)
    key_file, cert_file, ca_file = folder / "server.key", folder / "server.crt", folder / "ca.crt"
    if not (key_file.exists() and cert_file.exists() and ca_file.exists()):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labkit workspace CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=3650))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                            sorted(HOSTS)[0])]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=3650))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in HOSTS]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return key_file.read_bytes(), cert_file.read_bytes(), str(ca_file)


def _grpc_server(workspace: Workspace) -> int:
    import grpc
    from google.cloud import resourcemanager_v3 as rm

    def get_project(request, context):
        project_id = request.name.split("/", 1)[-1]
        return rm.Project(name=f"projects/{PROJECT_NUMBER}", project_id=project_id,
                          display_name=project_id, state=rm.Project.State.ACTIVE)

    handler = grpc.method_handlers_generic_handler("google.cloud.resourcemanager.v3.Projects", {
        "GetProject": grpc.unary_unary_rpc_method_handler(
            get_project, request_deserializer=rm.GetProjectRequest.deserialize,
            response_serializer=rm.Project.serialize)})
    key, cert, _ = _certificates(workspace)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    server.start()
    _keep.append(server)
    return port


_keep: list = []


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, target):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _proxy(grpc_port: int) -> int:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_one(client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            chunk = client.recv(1024)
            if not chunk:
                client.close()
                return
            head += chunk
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        host = parts[1].rsplit(":", 1)[0] if len(parts) == 3 and parts[0] == "CONNECT" else ""
        if host not in HOSTS:
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", grpc_port))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def accept() -> None:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=serve_one, args=(client,), daemon=True).start()

    threading.Thread(target=accept, daemon=True, name="resource-manager-proxy").start()
    _keep.append(listener)
    return listener.getsockname()[1]


def register(router: Router, services) -> None:
    """A service of its own: it answers gRPC through its own ports, not HTTP routes."""
    start(services.workspace)


def start(workspace: Workspace) -> None:
    """Starts the stand-in in this (services) process and records where it listens."""
    proxy_port = _proxy(_grpc_server(workspace))
    write_atomic(workspace.path("auth", "resource-manager", "proxy.json"),
                 json.dumps({"proxy": f"http://127.0.0.1:{proxy_port}"}))


def client_environment(workspace: Workspace) -> dict[str, str]:
    """Environment variables that send gRPC calls for HOSTS to the stand-in."""
    info = workspace.root / "auth" / "resource-manager" / "proxy.json"
    proxy = json.loads(info.read_text())["proxy"]
    return {"grpc_proxy": proxy, "no_grpc_proxy": "127.0.0.1,localhost",
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": _certificates(workspace)[2]}
