"""Errors in Cloud Storage's JSON API shape: {"error": {code, message, errors[{reason}]}}."""

from __future__ import annotations

from labkit.services.http import HttpError


def gcs_error(status: int, reason: str, message: str) -> HttpError:
    return HttpError(status, {"error": {
        "code": status, "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}]}})


def no_bucket(bucket: str) -> HttpError:
    return gcs_error(404, "notFound", "The specified bucket does not exist.")


def no_object(bucket: str, name: str) -> HttpError:
    return gcs_error(404, "notFound", f"No such object: {bucket}/{name}")


def bucket_exists(bucket: str) -> HttpError:
    return gcs_error(409, "conflict", "Your previous request to create the named bucket "
                                      "succeeded and you already own it.")


def bucket_not_empty(bucket: str) -> HttpError:
    return gcs_error(409, "conflict", "The bucket you tried to delete is not empty.")


def precondition_failed() -> HttpError:
    return gcs_error(412, "conditionNotMet",
                     "At least one of the pre-conditions you specified did not hold.")


def invalid(message: str) -> HttpError:
    return gcs_error(400, "invalid", message)
