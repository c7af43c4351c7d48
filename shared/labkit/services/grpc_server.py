"""The local TLS gRPC servers behind the proxy (Resource Manager, Sensitive Data Protection,
the BigQuery Connection and Storage Read APIs):
a certificate from the workspace CA, and the workspace secret checked on every call.

Google's gRPC clients send their credentials as `authorization: Bearer <token>` metadata
(google-auth's AuthMetadataPlugin); the local token endpoint mints the workspace token, so a
call without it, or with another, is refused with UNAUTHENTICATED as Google refuses it.
"""

from __future__ import annotations

import hmac
from concurrent import futures

from labkit.workspace import Workspace

# The wording Google's front end gives a call without valid credentials.
UNAUTHENTICATED_MESSAGE = ("Request had invalid authentication credentials. Expected OAuth 2 "
                           "access token, login cookie or other valid authentication "
                           "credential.")


def _token_check(token: str):
    import grpc

    expected = f"Bearer {token}"

    def refuse(request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)

    refusal = grpc.unary_unary_rpc_method_handler(refuse)

    class TokenCheck(grpc.ServerInterceptor):
        def intercept_service(self, continuation, details):
            sent = dict(details.invocation_metadata or ()).get("authorization", "")
            if hmac.compare_digest(sent.encode(), expected.encode()):
                return continuation(details)
            return refusal

    return TokenCheck()


def generic_handler(service: str, served: dict, product: str):
    """A generic handler for `service` (its full name) answering the RPCs in `served`
    (method name -> grpc method handler); its other RPCs answer UNIMPLEMENTED with the
    house wording, naming `product` (e.g. "Sensitive Data Protection")."""
    import grpc

    from labkit.services.http import gcp_only_message

    prefix = f"/{service}/"
    short = service.rsplit(".", 1)[-1]

    class Handler(grpc.GenericRpcHandler):
        def service(self, details):
            if not details.method.startswith(prefix):
                return None
            name = details.method[len(prefix):]
            if name in served:
                return served[name]

            def refuse(request, context):
                context.abort(grpc.StatusCode.UNIMPLEMENTED,
                              gcp_only_message(f"{short}.{name}", product))
            return grpc.unary_unary_rpc_method_handler(refuse)

    return Handler()


def serve(workspace: Workspace, handlers: list, max_workers: int = 4) -> int:
    """Starts a TLS gRPC server on 127.0.0.1 with these generic handlers; returns its port."""
    import grpc

    from labkit.services import proxy

    key, cert, _ = proxy.certificates(workspace)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers),
                         interceptors=[_token_check(workspace.token)])
    server.add_generic_rpc_handlers(handlers)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    server.start()
    _keep.append(server)
    return port


_keep: list = []
