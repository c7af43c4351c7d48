"""Errors in BigQuery's own shape: the HTTP error body and a job's errorResult."""

from __future__ import annotations

from labkit.services.http import HttpError

# reason -> (HTTP status, google.rpc status)
_STATUS = {
    "invalidQuery": (400, "INVALID_ARGUMENT"),
    "invalid": (400, "INVALID_ARGUMENT"),
    "badRequest": (400, "INVALID_ARGUMENT"),
    "resourceInUse": (400, "FAILED_PRECONDITION"),
    "notFound": (404, "NOT_FOUND"),
    "duplicate": (409, "ALREADY_EXISTS"),
    "conditionNotMet": (412, "FAILED_PRECONDITION"),
    "accessDenied": (403, "PERMISSION_DENIED"),
    "methodNotAllowed": (405, "UNIMPLEMENTED"),
    "notImplemented": (501, "UNIMPLEMENTED"),
    "backendError": (500, "INTERNAL"),
}

LOCAL_ONLY_HINT = "It runs with LAB_BACKEND=gcp."


class BigQueryError(Exception):
    """A failure the way BigQuery reports it: reason, message and (maybe) location."""

    def __init__(self, message: str, reason: str = "invalidQuery", location: str | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.location = location
        self.errors: list[dict] | None = None  # a job's errors[] when more than this one

    @property
    def status(self) -> int:
        return _STATUS.get(self.reason, (400, ""))[0]

    def error_proto(self) -> dict:
        """One entry of errors[] / the errorResult of a job."""
        entry = {"reason": self.reason, "message": self.message}
        if self.location:
            entry["location"] = self.location
        return entry

    def http(self) -> HttpError:
        status, rpc_status = _STATUS.get(self.reason, (400, "INVALID_ARGUMENT"))
        return HttpError(status, {"error": {
            "code": status, "message": self.message, "status": rpc_status,
            "errors": [{**self.error_proto(), "domain": "global"}],
        }})


def invalid_query(message: str, location: str | None = "query") -> BigQueryError:
    return BigQueryError(message, "invalidQuery", location)


def invalid(message: str) -> BigQueryError:
    return BigQueryError(message, "invalid")


def not_found(kind: str, name: str, location: str = "US") -> BigQueryError:
    return BigQueryError(f"Not found: {kind} {name} was not found in location {location}",
                         "notFound")


def duplicate(kind: str, name: str) -> BigQueryError:
    return BigQueryError(f"Already Exists: {kind} {name}", "duplicate")


def access_denied(message: str) -> BigQueryError:
    return BigQueryError(f"Access Denied: {message}", "accessDenied")


def unsupported(feature: str) -> BigQueryError:
    """A BigQuery feature the local service does not run: name it and point to gcp."""
    return BigQueryError(f"{feature} is not supported by the local BigQuery. {LOCAL_ONLY_HINT}",
                         "invalidQuery", "query")
