"""A Cloud Resource Manager stand-in for the one call PipelineJob.submit() makes.

submit() checks that an existing pipeline-root bucket belongs to the project by asking
Cloud Resource Manager for the project number over gRPC (cloudresourcemanager.googleapis.com,
no endpoint switch). Offline that call retries for 60 s and then fails. This stand-in is a
local TLS gRPC server answering Projects.GetProject; labkit.services.proxy routes that
host to it (grpc_proxy, with a certificate from the workspace CA); calls without the workspace
token are refused (services.grpc_server).
"""

from __future__ import annotations

from labkit.workspace import Workspace

# Local Cloud Storage reports projectNumber "0" for the buckets of the local project, so the
# SDK's ownership check compares equal numbers.
PROJECT_NUMBER = "0"


def serve(workspace: Workspace) -> int:
    """Starts the gRPC stand-in in this (services) process; returns its port."""
    import grpc
    from google.cloud import resourcemanager_v3 as rm

    from labkit.services import grpc_server

    def get_project(request, context):
        project_id = request.name.split("/", 1)[-1]
        return rm.Project(name=f"projects/{PROJECT_NUMBER}", project_id=project_id,
                          display_name=project_id, state=rm.Project.State.ACTIVE)

    handler = grpc.method_handlers_generic_handler("google.cloud.resourcemanager.v3.Projects", {
        "GetProject": grpc.unary_unary_rpc_method_handler(
            get_project, request_deserializer=rm.GetProjectRequest.deserialize,
            response_serializer=rm.Project.serialize)})
    return grpc_server.serve(workspace, [handler], max_workers=2)
