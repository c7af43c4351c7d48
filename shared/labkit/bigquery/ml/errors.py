"""BigQuery ML errors. The REST layer turns `reason` into the HTTP status
(invalidQuery 400, notFound 404, duplicate 409) and the message into the job error."""

from __future__ import annotations

GCP_HINT = "it runs with LAB_BACKEND=gcp"


class MLError(Exception):
    def __init__(self, message: str, reason: str = "invalidQuery"):
        super().__init__(message)
        self.message = message
        self.reason = reason


def not_local(feature: str) -> MLError:
    """A BigQuery ML feature that the local engine does not build."""
    return MLError(f"{feature} is not available in the local BigQuery; {GCP_HINT}.")
