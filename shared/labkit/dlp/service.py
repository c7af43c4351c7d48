"""The local Sensitive Data Protection service: google.privacy.dlp.v2.DlpService over gRPC.

google-cloud-dlp's DlpServiceClient() calls dlp.googleapis.com over gRPC and has no endpoint
switch in the environment, so this room serves a TLS gRPC server (services.grpc_server: the
workspace CA's certificate, the workspace token checked) and the proxy routes that host to it,
as it does Cloud Resource Manager. Methods it does not serve answer UNIMPLEMENTED with the
house wording; refusals are DLP's INVALID_ARGUMENT (and NOT_FOUND, ALREADY_EXISTS, ...).
"""

from __future__ import annotations

import datetime

from labkit.dlp import deidentify, detectors, inspection, jobs
from labkit.dlp.inspection import DlpError
from labkit.services.http import gcp_only_message

SERVICE = "google.privacy.dlp.v2.DlpService"


def _parent(request) -> None:
    jobs.parse_parent(request.parent)


def _no_template(name: str, what: str) -> None:
    if name:
        raise DlpError(gcp_only_message(f"{what} templates", "Sensitive Data Protection"),
                       "UNIMPLEMENTED")


def _now():
    return datetime.datetime.now(datetime.UTC)


class Methods:
    """One method per RPC: a dlp_v2 request in, a dlp_v2 response out, DlpError on refusal."""

    def __init__(self, dlp_jobs: jobs.DlpJobs):
        self.jobs = dlp_jobs

    def InspectContent(self, request):
        from google.cloud import dlp_v2

        _parent(request)
        _no_template(request.inspect_template_name, "Inspect")
        if "item" not in request:
            raise DlpError("InspectContentRequest.item must be set.")
        config = request.inspect_config if "inspect_config" in request else None
        return dlp_v2.InspectContentResponse(
            result=inspection.inspect(config, request.item, _now()))

    def DeidentifyContent(self, request):
        from google.cloud import dlp_v2

        _parent(request)
        _no_template(request.inspect_template_name, "Inspect")
        _no_template(request.deidentify_template_name, "De-identify")
        config = request.deidentify_config if "deidentify_config" in request else None
        item, overview = deidentify.run(config, _inspect_config(request), request.item)
        return dlp_v2.DeidentifyContentResponse(item=item, overview=overview)

    def ReidentifyContent(self, request):
        from google.cloud import dlp_v2

        _parent(request)
        _no_template(request.inspect_template_name, "Inspect")
        _no_template(request.reidentify_template_name, "Re-identify")
        config = request.reidentify_config if "reidentify_config" in request else None
        item, overview = deidentify.run(config, _inspect_config(request), request.item,
                                        reverse=True)
        return dlp_v2.ReidentifyContentResponse(item=item, overview=overview)

    def ListInfoTypes(self, request):
        from google.cloud import dlp_v2

        if request.filter and request.filter != "supported_by=INSPECT":
            raise DlpError(f'Invalid filter "{request.filter}".')
        return dlp_v2.ListInfoTypesResponse(info_types=[
            dlp_v2.InfoTypeDescription(
                name=name, display_name=name.replace("_", " ").title(),
                supported_by=[dlp_v2.InfoTypeSupportedBy.INSPECT],
                description=detectors.DESCRIPTIONS[name])
            for name in detectors.BUILT_IN])

    def CreateDlpJob(self, request):
        return self.jobs.create(request)

    def GetDlpJob(self, request):
        return self.jobs.get(request.name)

    def ListDlpJobs(self, request):
        return self.jobs.list(request)

    def DeleteDlpJob(self, request):
        from google.protobuf import empty_pb2

        self.jobs.delete(request.name)
        return empty_pb2.Empty()

    def CancelDlpJob(self, request):
        from google.protobuf import empty_pb2

        self.jobs.cancel(request.name)
        return empty_pb2.Empty()


def _inspect_config(request):
    return request.inspect_config if "inspect_config" in request else None


def handler(methods: Methods):
    """The generic gRPC handler: DlpService's RPCs, each typed by google-cloud-dlp's messages;
    the others unary RPCs of the service answer UNIMPLEMENTED."""
    import grpc
    from google.cloud import dlp_v2
    from google.protobuf import empty_pb2

    from labkit.services import grpc_server

    types = {
        "InspectContent": (dlp_v2.InspectContentRequest, dlp_v2.InspectContentResponse),
        "DeidentifyContent": (dlp_v2.DeidentifyContentRequest,
                              dlp_v2.DeidentifyContentResponse),
        "ReidentifyContent": (dlp_v2.ReidentifyContentRequest,
                              dlp_v2.ReidentifyContentResponse),
        "ListInfoTypes": (dlp_v2.ListInfoTypesRequest, dlp_v2.ListInfoTypesResponse),
        "CreateDlpJob": (dlp_v2.CreateDlpJobRequest, dlp_v2.DlpJob),
        "GetDlpJob": (dlp_v2.GetDlpJobRequest, dlp_v2.DlpJob),
        "ListDlpJobs": (dlp_v2.ListDlpJobsRequest, dlp_v2.ListDlpJobsResponse),
        "DeleteDlpJob": (dlp_v2.DeleteDlpJobRequest, None),
        "CancelDlpJob": (dlp_v2.CancelDlpJobRequest, None),
    }

    def rpc(name, request_type, response_type):
        method = getattr(methods, name)

        def call(request, context):
            try:
                return method(request)
            except DlpError as e:
                context.abort(getattr(grpc.StatusCode, e.code), e.message)
            except Exception as e:  # a bug here, said as one (not gRPC's bare UNKNOWN)
                if isinstance(e, grpc.RpcError) or context.code() is not None:
                    raise
                context.abort(grpc.StatusCode.INTERNAL,
                              f"The local Sensitive Data Protection failed on {name}: "
                              f"{type(e).__name__}: {e}")

        serialize = response_type.serialize if response_type else \
            empty_pb2.Empty.SerializeToString
        return grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=request_type.deserialize,
            response_serializer=serialize)

    served = {name: rpc(name, *pair) for name, pair in types.items()}
    return grpc_server.generic_handler(SERVICE, served, "Sensitive Data Protection")


def register(router, services) -> None:
    """A room with no HTTP routes: it starts the gRPC server and routes dlp.googleapis.com to
    it, and REST calls to the same methods, through the proxy (registered before it)."""
    from labkit.dlp import rest
    from labkit.services import grpc_server, proxy

    workspace = services.workspace
    methods = Methods(jobs.DlpJobs(workspace, services.bigquery))
    grpc_port = grpc_server.serve(workspace, [handler(methods)])
    folder = proxy.certificates(workspace)[2].rsplit("/", 1)[0]
    front = rest.Front(methods, workspace.token, grpc_port, f"{folder}/server.crt",
                       f"{folder}/server.key")
    proxy.add_route(proxy.DLP, front.serve)
