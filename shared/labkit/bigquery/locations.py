"""Where BigQuery data lives and where a job runs.

A dataset's location is fixed when it is created: a multi-region (US, EU) or a region
(us-central1). "BigQuery processes queries in the same location as the dataset that
contains the tables you're querying"; a job's location is the one the request names
(jobReference.location, the client's `location`) or, when none is named, that of the
datasets it reads (https://cloud.google.com/bigquery/docs/locations, "Specify locations").
A job that touches a dataset elsewhere fails as BigQuery answers it: "Not found: Dataset
p:d was not found in location EU". Multi-regions are names of their own: a dataset in US
is not in us-central1, and the other way round.
"""

from __future__ import annotations

from collections.abc import Callable

from labkit.bigquery.errors import invalid, not_found

DEFAULT = "US"  # where a dataset created without a location, and the public datasets, live
MULTI_REGIONS = ("US", "EU")
_REGION_PREFIXES = ("us-", "europe-", "asia-", "australia-", "northamerica-",
                    "southamerica-", "me-", "africa-")


def normalize(location: str) -> str:
    """BigQuery's spelling: multi-regions upper case, regions lower case; names are
    matched without regard to case."""
    return location.upper() if location.upper() in MULTI_REGIONS else location.lower()


def dataset_location(location: str | None) -> str:
    """A new dataset's location, checked: the default when none is given."""
    if location in (None, ""):
        return DEFAULT
    if not isinstance(location, str):
        raise invalid(f"Invalid dataset location: {location!r}")
    name = normalize(location)
    if name not in MULTI_REGIONS and not (name.startswith(_REGION_PREFIXES)
                                          and name[-1:].isdigit()):
        raise invalid(f"Invalid dataset location: {location}")
    return name


class JobLocation:
    """The location one job runs in, fixed by the request or by the first dataset it
    touches; every other dataset it touches must be there too."""

    def __init__(self, locate: Callable[[str, str], str], requested: str | None = None):
        self.locate = locate  # (project, dataset) -> the dataset's location
        self.value = normalize(requested) if requested else None

    def touch(self, project: str, dataset: str) -> None:
        where = self.locate(project, dataset)
        if self.value is None:
            self.value = where
        elif where != self.value:
            raise not_found("Dataset", f"{project}:{dataset}", self.value)

    @property
    def effective(self) -> str:
        return self.value or DEFAULT
