"""The BigQuery Connection API stand-in: `bq mk --connection --connection_type=CLOUD_RESOURCE`
and its client, google-cloud-bigquery-connection's ConnectionServiceClient.

That client speaks gRPC to bigqueryconnection.googleapis.com with no endpoint switch a
learner would set, so labkit.services.proxy routes that host here (as for Resource Manager
and Sensitive Data Protection). Connections are JSON files, one per connection, under
workspace/bigquery/connections/<project>/<location>/<id>.json; BigQuery ML reads them when
CREATE MODEL ... REMOTE WITH CONNECTION names one.

Only CLOUD_RESOURCE connections exist locally (the kind remote models over Vertex AI use,
docs: https://cloud.google.com/bigquery/docs/create-cloud-resource-connection); Cloud SQL,
Spanner, AWS, Azure and Spark connections reach systems outside this machine and are refused
with UNIMPLEMENTED. Names carry the project id where Google writes the project number.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid

from labkit.services.files import write_atomic
from labkit.services.http import gcp_only_message
from labkit.workspace import Workspace

HOST = "bigqueryconnection.googleapis.com"
SERVICE = "google.cloud.bigquery.connection.v1.ConnectionService"
# Connection ids: letters, digits and underscores (hyphens too), at most 64 characters
# (https://cloud.google.com/bigquery/docs/reference/bigqueryconnection/rest/v1/
# projects.locations.connections/create: connectionId "Optional. Connection id that should
# be assigned to the created connection").
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LOCATION = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
_PARENT = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)$")
_NAME = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
                   r"/connections/(?P<id>[^/]+)$")
_OTHER_KINDS = ("cloud_sql", "aws", "azure", "cloud_spanner", "spark",
                "salesforce_data_cloud")


class ConnectionAPIError(Exception):
    """code: a grpc.StatusCode name."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class ConnectionStore:
    """Connections as plain dicts (the REST JSON shape of a Connection)."""

    def __init__(self, workspace: Workspace):
        self.root = workspace.path("bigquery", "connections")
        self._lock = threading.Lock()

    def _path(self, project: str, location: str, connection_id: str):
        for part in (project, location, connection_id):
            if not re.match(r"^[A-Za-z0-9_.:-]+$", part) or part.startswith("."):
                raise ConnectionAPIError("INVALID_ARGUMENT", f"Invalid resource name part "
                                       f"{part!r}.")
        return self.root / project / location.lower() / f"{connection_id}.json"

    def create(self, parent: str, connection_id: str, body: dict) -> dict:
        match = _PARENT.match(parent or "")
        if not match:
            raise ConnectionAPIError("INVALID_ARGUMENT", f"Invalid parent {parent!r}: expected "
                                   "projects/PROJECT/locations/LOCATION.")
        project, location = match["project"], match["location"].lower()
        if not _LOCATION.match(location):
            raise ConnectionAPIError("INVALID_ARGUMENT", f"Invalid location {location!r}.")
        connection_id = connection_id or uuid.uuid4().hex
        if not _ID.match(connection_id):
            raise ConnectionAPIError("INVALID_ARGUMENT", f"Invalid connection id "
                                   f"{connection_id!r}: use letters, numbers, underscores "
                                   "and hyphens, at most 64 characters.")
        kinds = [k for k in _OTHER_KINDS if k in body]
        if kinds:
            raise ConnectionAPIError("UNIMPLEMENTED", gcp_only_message(
                f"{kinds[0]} connections", "the BigQuery Connection API"))
        if "cloud_resource" not in body:
            raise ConnectionAPIError("INVALID_ARGUMENT", "Connection properties are required: "
                                   "set cloud_resource (CLOUD_RESOURCE connection).")
        now = int(time.time() * 1000)
        name = f"projects/{project}/locations/{location}/connections/{connection_id}"
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        resource = {
            "name": name, "friendly_name": body.get("friendly_name", ""),
            "description": body.get("description", ""),
            # the service account BigQuery acts as (granted roles/aiplatform.user on GCP)
            "cloud_resource": {"service_account_id":
                               f"bqcx-{project}-{digest}@gcp-sa-bigquery-condel.iam."
                               "gserviceaccount.com"},
            "creation_time": now, "last_modified_time": now, "has_credential": False}
        path = self._path(project, location, connection_id)
        with self._lock:
            if path.exists():
                raise ConnectionAPIError("ALREADY_EXISTS", f"Connection {name} already "
                                       "exists.")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(resource))
        return resource

    def get(self, name: str) -> dict:
        match = _NAME.match(name or "")
        if not match:
            raise ConnectionAPIError("INVALID_ARGUMENT", f"Invalid connection name {name!r}.")
        path = self._path(match["project"], match["location"], match["id"])
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise ConnectionAPIError("NOT_FOUND", f"Not found: Connection {name}") from None

    def find(self, project: str, location: str, connection_id: str) -> dict | None:
        """The connection `project.location.id` that SQL names, or None."""
        try:
            return self.get(f"projects/{project}/locations/{location.lower()}/connections/"
                            f"{connection_id}")
        except ConnectionAPIError:
            return None

    def list(self, parent: str) -> list[dict]:
        match = _PARENT.match(parent or "")
        if not match:
            raise ConnectionAPIError("INVALID_ARGUMENT", f"Invalid parent {parent!r}.")
        folder = self._path(match["project"], match["location"], "x").parent
        if not folder.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]

    def delete(self, name: str) -> None:
        self.get(name)
        match = _NAME.match(name)
        self._path(match["project"], match["location"], match["id"]).unlink(missing_ok=True)


def handler(store: ConnectionStore):
    """ConnectionService's RPCs the local BigQuery keeps, typed by the client's messages;
    the other RPCs (IAM policies, updates) answer UNIMPLEMENTED."""
    import grpc
    from google.cloud import bigquery_connection_v1 as bc
    from google.protobuf import empty_pb2, json_format

    from labkit.services import grpc_server

    def to_message(resource: dict):
        return bc.Connection.wrap(json_format.ParseDict(
            {**resource, "creation_time": str(resource["creation_time"]),
             "last_modified_time": str(resource["last_modified_time"])},
            bc.Connection.pb()(), ignore_unknown_fields=True))

    def create(request):
        body = json_format.MessageToDict(bc.Connection.pb(request.connection),
                                         preserving_proto_field_name=True)
        return to_message(store.create(request.parent, request.connection_id, body))

    def list_(request):
        items = store.list(request.parent)
        size = request.page_size or 100
        start = int(request.page_token or 0) if str(request.page_token or "0").isdigit() \
            else 0
        page = items[start:start + size]
        token = str(start + size) if start + size < len(items) else ""
        return bc.ListConnectionsResponse(connections=[to_message(c) for c in page],
                                          next_page_token=token)

    def delete(request):
        store.delete(request.name)
        return empty_pb2.Empty()

    methods = {
        "CreateConnection": (create, bc.CreateConnectionRequest, bc.Connection.serialize),
        "GetConnection": (lambda r: to_message(store.get(r.name)), bc.GetConnectionRequest,
                          bc.Connection.serialize),
        "ListConnections": (list_, bc.ListConnectionsRequest,
                            bc.ListConnectionsResponse.serialize),
        "DeleteConnection": (delete, bc.DeleteConnectionRequest,
                             empty_pb2.Empty.SerializeToString),
    }

    def rpc(method, request_type, serialize):
        def call(request, context):
            try:
                return method(request)
            except ConnectionAPIError as exc:
                context.abort(getattr(grpc.StatusCode, exc.code), exc.message)
        return grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=request_type.deserialize, response_serializer=serialize)

    served = {name: rpc(*spec) for name, spec in methods.items()}
    return grpc_server.generic_handler(SERVICE, served, "the BigQuery Connection API")


def register(router, services) -> None:
    """A room with no HTTP routes: the gRPC server behind the proxy for
    bigqueryconnection.googleapis.com (labkit.services.proxy is registered before it)."""
    from labkit.services import grpc_server, proxy

    port = grpc_server.serve(services.workspace, [handler(ConnectionStore(services.workspace))])
    proxy.add_route(proxy.BIGQUERY_CONNECTION, port)
