"""Long-running operations as Vertex returns them.

The local control plane finishes its work before answering, so operations come back with
done: true (the SDK then never polls); they are kept so GET .../operations/ID answers.
Any-typed fields carry "@type" so the client can unpack them.
"""

from __future__ import annotations

from labkit.vertex.errors import VertexError
from labkit.vertex.store import ResourceStore, new_id, now

TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."
EMPTY = "type.googleapis.com/google.protobuf.Empty"


def done(store: ResourceStore, parent: str, metadata_type: str, response_type: str | None,
         response: dict | None = None, error: VertexError | None = None) -> dict:
    """A finished operation under `parent` (a resource name) with its response or error."""
    op_id = new_id()
    stamp = now()
    operation = {
        "name": f"{parent}/operations/{op_id}",
        "metadata": {"@type": TYPE + metadata_type,
                     "genericMetadata": {"createTime": stamp, "updateTime": stamp}},
        "done": True,
    }
    if error is not None:
        operation["error"] = error.as_operation_error()
    elif response_type is None:
        operation["response"] = {"@type": EMPTY}
    else:
        operation["response"] = {"@type": TYPE + response_type, **(response or {})}
    store.put("operations", op_id, operation)
    return operation


def get(store: ResourceStore, op_id: str, name: str) -> dict:
    operation = store.get("operations", op_id)
    if operation is None:
        raise VertexError("NOT_FOUND", f"Operation {name} is not found.")
    return operation
