"""What the Gen AI engines refuse, as plain exceptions; routes.py maps them to Vertex AI's
google.rpc.Status errors (labkit.vertex.errors) at one boundary."""

from __future__ import annotations


class GenAIError(Exception):
    status = "INVALID_ARGUMENT"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(GenAIError):
    status = "INVALID_ARGUMENT"


class NotFound(GenAIError):
    status = "NOT_FOUND"


class NotLocal(GenAIError):
    """A feature the local model does not have: it runs on Google Cloud."""
    status = "UNIMPLEMENTED"

    def __init__(self, feature: str):
        super().__init__(f"{feature} is not available on the local Vertex AI; it runs with "
                         f"LAB_BACKEND=gcp.")
