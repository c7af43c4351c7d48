"""The proxy for Google's hard-coded hostnames: a CONNECT proxy and a workspace CA.

Some Google code has no endpoint switch: the Cloud Resource Manager client (gRPC) that
PipelineJob.submit() calls, Sensitive Data Protection's DlpServiceClient (gRPC), and
TensorFlow's own gs:// file system (libcurl, calling https://storage.googleapis.com and
https://www.googleapis.com/storage/v1/). They honour a
proxy (`grpc_proxy`; `https_proxy`) and a CA file (`GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`;
`CURL_CA_BUNDLE`). This proxy tunnels CONNECT requests for the hosts in ROUTES to local
stand-ins that present a certificate from a workspace CA; other Google API hosts get 403,
and every other host is tunnelled untouched (a learner's `pip install` keeps working).
"""

from __future__ import annotations

import datetime
import json
import socket
import threading

from labkit.services.files import write_atomic
from labkit.workspace import Workspace

RESOURCE_MANAGER = "cloudresourcemanager.googleapis.com"
DLP = "dlp.googleapis.com"  # Sensitive Data Protection's client: gRPC, no endpoint switch
BIGQUERY_CONNECTION = "bigqueryconnection.googleapis.com"  # ConnectionServiceClient: gRPC
DATAFLOW = "dataflow.googleapis.com"  # Beam's DataflowRunner (google-cloud-dataflow-client)
BIGQUERY_STORAGE = "bigquerystorage.googleapis.com"  # BigQueryReadClient: gRPC
STORAGE_HOSTS = ("storage.googleapis.com", "www.googleapis.com")
# Beam's BigQuery I/O (its apitools client) calls https://bigquery.googleapis.com/bigquery/v2/
# and honours no emulator variable: storage_front forwards it to the local BigQuery routes.
BIGQUERY_REST = "bigquery.googleapis.com"
# names the stand-ins' certificate carries
HOSTS = (RESOURCE_MANAGER, DLP, BIGQUERY_CONNECTION, BIGQUERY_STORAGE, DATAFLOW, BIGQUERY_REST,
         *STORAGE_HOSTS)


def _folder(workspace: Workspace):
    # The folder keeps its first name: workspaces made before the proxy served more than
    # Resource Manager have their CA there.
    return workspace.path("auth", "resource-manager")


def certificates(workspace: Workspace) -> tuple[bytes, bytes, str]:
    """(server key PEM, server cert PEM for HOSTS, CA file path), made once per workspace
    (the server certificate again when HOSTS grows)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = _folder(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = folder / "server.key", folder / "server.crt"
    ca_file, ca_key_file = folder / "ca.crt", folder / "ca.key"
    now = datetime.datetime.now(datetime.UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labkit workspace CA")])
    if not (ca_file.exists() and ca_key_file.exists()):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=3650))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .sign(ca_key, hashes.SHA256()))
        write_atomic(ca_key_file, ca_key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
        write_atomic(ca_file, ca.public_bytes(serialization.Encoding.PEM), mode=0o644)
        cert_file.unlink(missing_ok=True)
    if cert_file.exists() and key_file.exists():
        names = x509.load_pem_x509_certificate(cert_file.read_bytes()).extensions \
            .get_extension_for_class(x509.SubjectAlternativeName).value \
            .get_values_for_type(x509.DNSName)
        if set(names) != set(HOSTS):
            cert_file.unlink()
    if not (cert_file.exists() and key_file.exists()):
        ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), None)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTS[0])]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=3650))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in HOSTS]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        write_atomic(key_file, key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
        write_atomic(cert_file, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return key_file.read_bytes(), cert_file.read_bytes(), str(ca_file)


def ca_bundle(workspace: Workspace) -> str:
    """The workspace CA followed by the public roots (certifi): for libcurl's
    CURL_CA_BUNDLE, which replaces the system roots for every host it verifies."""
    import certifi

    path = _folder(workspace) / "ca-bundle.pem"
    ca = open(certificates(workspace)[2], "rb").read()
    bundle = ca + b"\n" + open(certifi.where(), "rb").read()
    if not path.exists() or path.read_bytes() != bundle:
        write_atomic(path, bundle, mode=0o644)
    return str(path)


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


def _refuse(client: socket.socket, host: str) -> None:
    message = (f"The labkit proxy stands in for {', '.join(HOSTS)} (the local services); "
               f"{host or 'this request'} is a Google API the local services do not serve, "
               f"so it is refused rather than sent to Google without credentials. It runs "
               f"with LAB_BACKEND=gcp.").encode()
    client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                   b"Content-Length: " + str(len(message)).encode() + b"\r\n\r\n" + message)
    client.close()


def serve(routes: dict) -> int:
    """Starts the proxy: routes maps a host to a local port (a TLS stand-in that tunnels
    bytes) or to a callable taking the client socket (a stand-in that terminates TLS in
    the proxy's thread). Returns the proxy's port."""
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
        host, _, port = (parts[1].rpartition(":") if len(parts) == 3 and parts[0] == "CONNECT"
                         else ("", "", ""))
        target = routes.get(host)
        if target is None and (not host or host.endswith(".googleapis.com")
                               or host.endswith(".featurestore.vertexai.goog")  # online stores
                               or not port.isdigit()):
            _refuse(client, host)
            return
        if target is None:  # any other host: tunnelled untouched (`pip install` in a cell)
            try:
                upstream = socket.create_connection((host, int(port)), timeout=30)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                client.close()
                return
            upstream.settimeout(None)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
            _pipe(client, upstream)
            return
        if callable(target):
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            target(client, host)
            return
        upstream = socket.create_connection(("127.0.0.1", target))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def accept() -> None:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=serve_one, args=(client,), daemon=True).start()

    threading.Thread(target=accept, daemon=True, name="google-hosts-proxy").start()
    _keep.append(listener)
    return listener.getsockname()[1]


_keep: list = []
_routes: dict = {}  # the running proxy's routes: rooms registered after it add theirs


def add_route(host: str, target) -> None:
    """Sends the proxy's CONNECTs for `host` (one of HOSTS) to a local TLS stand-in (a port,
    or a callable taking the client socket, as serve() says)."""
    assert host in HOSTS, host
    _routes[host] = target


def register(router, services) -> None:
    """A service of its own: it answers through its own ports, not HTTP routes. It starts
    the stand-ins (Resource Manager over gRPC, Cloud Storage's Google hostnames) and the
    proxy in front of them, and records where the proxy listens."""
    from labkit.services import resource_manager, storage_front

    workspace = services.workspace
    certificates(workspace)
    front = storage_front.Front(workspace, services.endpoint,
                                str(_folder(workspace) / "server.crt"),
                                str(_folder(workspace) / "server.key"))
    _routes.update({RESOURCE_MANAGER: resource_manager.serve(workspace),
                    **{host: front.serve for host in (*STORAGE_HOSTS, BIGQUERY_REST)}})
    proxy_port = serve(_routes)
    ca_bundle(workspace)
    write_atomic(_folder(workspace) / "proxy.json",
                 json.dumps({"proxy": f"http://127.0.0.1:{proxy_port}"}))


def client_environment(workspace: Workspace) -> dict[str, str]:
    """Environment variables that send calls for HOSTS to the stand-ins: gRPC's for
    Resource Manager and Sensitive Data Protection, libcurl's (TensorFlow's gs:// file
    system) for Cloud Storage."""
    proxy = json.loads((_folder(workspace) / "proxy.json").read_text())["proxy"]
    local = "127.0.0.1,localhost,::1"
    return {"grpc_proxy": proxy, "no_grpc_proxy": local,
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": certificates(workspace)[2],
            "https_proxy": proxy, "no_proxy": local,
            "CURL_CA_BUNDLE": str(_folder(workspace) / "ca-bundle.pem"),
            # httplib2 (Beam's apitools BigQuery client) reads its own CA variable
            "HTTPLIB2_CA_CERTS": str(_folder(workspace) / "ca-bundle.pem")}
