"""The local Dataflow service: google.dataflow.v1beta3 over gRPC, behind the proxy.

Beam's DataflowRunner talks to Dataflow through google-cloud-dataflow-client's
JobsV1Beta3Client, MessagesV1Beta3Client and MetricsV1Beta3Client, over gRPC to
dataflow.googleapis.com unless the `dataflow_endpoint` option names another host
(apache_beam/runners/dataflow/internal/apiclient.py); the option has no environment
default. So, as for Sensitive Data Protection, this room serves a TLS gRPC server
(services.grpc_server: the workspace CA's certificate, the workspace token checked) and
the proxy routes dataflow.googleapis.com to it. The pipeline and its staged files reach
the local Cloud Storage through STORAGE_EMULATOR_HOST, which google-cloud-storage (Beam's
gcsio) honours. Templates, snapshots and the execution-details methods answer
UNIMPLEMENTED naming LAB_BACKEND=gcp.
"""

from __future__ import annotations

from labkit.dataflow.jobs import DataflowError, Jobs, not_local

PACKAGE = "google.dataflow.v1beta3"


class Methods:
    """One method per served RPC: a dataflow_v1beta3 request in, its response out."""

    def __init__(self, jobs: Jobs):
        self.jobs = jobs

    def CreateJob(self, request):
        if request.view.name not in ("JOB_VIEW_UNKNOWN", "JOB_VIEW_SUMMARY", "JOB_VIEW_ALL"):
            raise DataflowError(f"Invalid view {request.view.name} for CreateJob.")
        if request.replace_job_id:
            raise not_local("Replacing a job (replace_job_id)")
        return self.jobs.create(request.project_id, request.location, request.job)

    def GetJob(self, request):
        return self.jobs.get(request.project_id, request.location, request.job_id,
                             request.view.name)

    def ListJobs(self, request):
        return self.jobs.list(request.project_id, request.location, request.filter.name,
                              request.page_size, request.page_token)

    def AggregatedListJobs(self, request):
        return self.jobs.list(request.project_id, None, request.filter.name,
                              request.page_size, request.page_token)

    def UpdateJob(self, request):
        return self.jobs.update(request.project_id, request.location, request.job_id,
                                request.job)

    def ListJobMessages(self, request):
        start = request.start_time if "start_time" in request else None
        end = request.end_time if "end_time" in request else None
        return self.jobs.messages(request.project_id, request.location, request.job_id,
                                  request.minimum_importance.name, start, end,
                                  request.page_size, request.page_token)

    def GetJobMetrics(self, request):
        return self.jobs.metrics(request.project_id, request.location, request.job_id)


def _types() -> dict:
    from google.cloud import dataflow_v1beta3 as d

    return {
        "JobsV1Beta3/CreateJob": (d.CreateJobRequest, d.Job),
        "JobsV1Beta3/GetJob": (d.GetJobRequest, d.Job),
        "JobsV1Beta3/ListJobs": (d.ListJobsRequest, d.ListJobsResponse),
        "JobsV1Beta3/AggregatedListJobs": (d.ListJobsRequest, d.ListJobsResponse),
        "JobsV1Beta3/UpdateJob": (d.UpdateJobRequest, d.Job),
        "MessagesV1Beta3/ListJobMessages": (d.ListJobMessagesRequest,
                                            d.ListJobMessagesResponse),
        "MetricsV1Beta3/GetJobMetrics": (d.GetJobMetricsRequest, d.JobMetrics),
    }


# What runs only on Google, by RPC name: the message names the feature.
NOT_LOCAL = {
    "TemplatesService/CreateJobFromTemplate": "Classic template launches",
    "TemplatesService/LaunchTemplate": "Classic template launches",
    "TemplatesService/GetTemplate": "Classic templates",
    "FlexTemplatesService/LaunchFlexTemplate": "Flex Template launches",
    "JobsV1Beta3/SnapshotJob": "Job snapshots",
    "JobsV1Beta3/CheckActiveJobs": "CheckActiveJobs",
    "SnapshotsV1Beta3/GetSnapshot": "Job snapshots",
    "SnapshotsV1Beta3/DeleteSnapshot": "Job snapshots",
    "SnapshotsV1Beta3/ListSnapshots": "Job snapshots",
    "MetricsV1Beta3/GetJobExecutionDetails": "Job execution details",
    "MetricsV1Beta3/GetStageExecutionDetails": "Stage execution details",
}


def handler(methods: Methods):
    """The generic gRPC handler for the google.dataflow.v1beta3 services."""
    import grpc

    def rpc(path, request_type, response_type):
        method = getattr(methods, path.split("/")[1])

        def call(request, context):
            try:
                return method(request)
            except DataflowError as e:
                context.abort(getattr(grpc.StatusCode, e.code), e.message)
            except Exception as e:  # a bug here, said as one (not gRPC's bare UNKNOWN)
                if isinstance(e, grpc.RpcError) or context.code() is not None:
                    raise
                context.abort(grpc.StatusCode.INTERNAL,
                              f"The local Dataflow failed on {path}: {type(e).__name__}: {e}")

        return grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=request_type.deserialize,
            response_serializer=response_type.serialize)

    served = {path: rpc(path, *pair) for path, pair in _types().items()}

    class Handler(grpc.GenericRpcHandler):
        def service(self, details):
            prefix = f"/{PACKAGE}."
            if not details.method.startswith(prefix):
                return None
            path = details.method[len(prefix):]
            if path in served:
                return served[path]
            error = not_local(NOT_LOCAL.get(path, f"Dataflow's {path}"))

            def refuse(request, context):
                context.abort(grpc.StatusCode.UNIMPLEMENTED, error.message)
            return grpc.unary_unary_rpc_method_handler(refuse)

    return Handler()


def register(router, services) -> None:
    """A room with no HTTP routes: it starts the gRPC server and routes
    dataflow.googleapis.com to it through the proxy (registered before it)."""
    from labkit.services import grpc_server, proxy

    jobs = Jobs(services.workspace, services.client_environment)
    services.closers.append(jobs.close)
    port = grpc_server.serve(services.workspace, [handler(Methods(jobs))])
    proxy.add_route(proxy.DATAFLOW, port)
