"""The AutoML search's errors: plain exceptions that name what went wrong.

Callers map them at their boundary: Vertex AI to VertexError (InvalidInput ->
INVALID_ARGUMENT, NoModelFound -> INTERNAL), BigQuery ML to its MLError. They are
ValueErrors, so a caller that treats bad options as ValueError keeps working.
"""

from __future__ import annotations


class AutoMLError(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(AutoMLError):
    """The data, the objective or a setting breaks one of AutoML's rules."""


class NoModelFound(AutoMLError):
    """The search ended without a model (the time budget was too small)."""
