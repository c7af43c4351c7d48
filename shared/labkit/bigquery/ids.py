"""Resource ids as BigQuery validates them, so that no request id can name a path.

Rules and messages from BigQuery's documentation and errors: project ids are 6 to 63
lowercase letters, digits and dashes, starting with a letter, optionally after a domain and
a colon; dataset ids are letters, digits and underscores (at most 1024); table ids are
Unicode letters, marks, numbers, connectors, dashes and spaces (at most 1024 bytes of UTF-8);
job ids are letters, digits, underscores and dashes (at most 1024); routine ids are letters,
digits and underscores (at most 256).
"""

from __future__ import annotations

import re
import unicodedata

from labkit.bigquery.errors import BigQueryError

_PROJECT = re.compile(r"^(?:[a-z0-9][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,61}[a-z0-9]$")
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_JOB = re.compile(r"^[A-Za-z0-9_-]{1,1024}$")
_MODEL = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_ROUTINE = re.compile(r"^[A-Za-z0-9_]{1,256}$")
_TABLE_CATEGORIES = ("L", "M", "N", "Pc", "Pd", "Zs")


def _invalid(message: str) -> BigQueryError:
    return BigQueryError(message, "invalid")


def project(value: object) -> str:
    if not isinstance(value, str) or not _PROJECT.match(value):
        raise _invalid(f"Invalid project ID '{value}'. Project IDs must contain 6-63 lowercase "
                       "letters, digits, or dashes. Some project IDs also include domain name "
                       "separated by a colon. IDs must start with a letter and may not end "
                       "with a dash.")
    return value


def dataset(value: object) -> str:
    if not isinstance(value, str) or not _DATASET.match(value):
        raise _invalid(f"Invalid dataset ID \"{value}\". Dataset IDs must be alphanumeric "
                       "(plus underscores) and must be at most 1024 characters long.")
    return value


def table(value: object) -> str:
    name = value.split("$", 1)[0] if isinstance(value, str) else ""  # partition decorators
    if not name or len(name.encode()) > 1024 or not all(
            unicodedata.category(c).startswith(_TABLE_CATEGORIES) for c in name):
        raise _invalid(f"Invalid table ID \"{value}\". Table IDs must be alphanumeric "
                       "(plus underscores, dashes and spaces) and must be at most 1024 "
                       "characters long.")
    return value


def job(value: object) -> str:
    if not isinstance(value, str) or not _JOB.match(value):
        raise _invalid(f"Invalid job ID \"{value}\". Job IDs must be alphanumeric (plus "
                       "underscores and dashes) and must be at most 1024 characters long.")
    return value


def model(value: object) -> str:
    if not isinstance(value, str) or not _MODEL.match(value):
        raise _invalid(f"Invalid model ID \"{value}\". Model IDs must be alphanumeric (plus "
                       "underscores) and must be at most 1024 characters long.")
    return value


def routine(value: object) -> str:
    """Routine ids: letters, digits and underscores, at most 256 (RoutineReference)."""
    if not isinstance(value, str) or not _ROUTINE.match(value):
        raise _invalid(f"Invalid routine ID \"{value}\". Routine IDs must contain only "
                       "letters (a-z, A-Z), numbers (0-9), or underscores (_), and must be at "
                       "most 256 characters long.")
    return value


_BY_PARAM = {"project": project, "dataset": dataset, "table": table, "job_id": job,
             "model": model, "routine": routine}


def check_params(params: dict) -> None:
    """Validates the ids a REST path names (its route's named groups)."""
    for key, value in params.items():
        check = _BY_PARAM.get(key)
        if check is not None:
            check(value)


def check_reference(ref: object, *, table_key: str | None = "tableId") -> None:
    """Validates a {projectId, datasetId[, tableId]} reference from a request body; absent
    keys are left to the caller's defaults."""
    if ref is None:
        return
    if not isinstance(ref, dict):
        raise _invalid(f"Invalid reference: {ref!r}")
    if ref.get("projectId") is not None:
        project(ref["projectId"])
    if ref.get("datasetId") is not None:
        dataset(ref["datasetId"])
    if table_key and ref.get(table_key) is not None:
        table(ref[table_key])
