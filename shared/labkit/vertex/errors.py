"""Errors in Vertex AI's google.rpc.Status JSON shape: {"error": {code, message, status}}."""

from __future__ import annotations

from labkit.services.http import HttpError, gcp_only_message

# google.rpc.Code numbers, used inside long-running operations' `error`.
RPC_CODES = {"INVALID_ARGUMENT": 3, "NOT_FOUND": 5, "ALREADY_EXISTS": 6,
             "FAILED_PRECONDITION": 9, "UNIMPLEMENTED": 12, "INTERNAL": 13}
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
               "FAILED_PRECONDITION": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500}


class VertexError(HttpError):
    def __init__(self, status: str, message: str):
        self.rpc_status = status
        self.message = message
        super().__init__(HTTP_STATUS[status], {"error": {
            "code": HTTP_STATUS[status], "message": message, "status": status}})

    def as_operation_error(self) -> dict:
        return {"code": RPC_CODES[self.rpc_status], "message": self.message}


def not_found(kind: str, name: str) -> VertexError:
    return VertexError("NOT_FOUND", f"{kind} {name} is not found.")


def invalid(message: str) -> VertexError:
    return VertexError("INVALID_ARGUMENT", message)


def failed_precondition(message: str) -> VertexError:
    return VertexError("FAILED_PRECONDITION", message)


def gcp_only(feature: str) -> VertexError:
    """What the local Vertex AI cannot do: the error names it and where it runs."""
    return VertexError("UNIMPLEMENTED", gcp_only_message(feature, "Vertex AI"))
