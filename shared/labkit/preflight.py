"""Checks labkit.start() makes on LAB_BACKEND=gcp before a lab spends money: the Google
APIs the lab calls are enabled, and the bucket exists in the lab's region. Each failure says
the exact command that fixes it.

Why the bucket's region: Vertex AI refuses a bucket outside its region ("FailedPrecondition:
400 The Cloud Storage bucket of `gs://...` is in location `us`. It must be in the same
regional location as the service location `us-central1`.", quoted in
googleapis/python-aiplatform, google/cloud/aiplatform/utils/gcs_utils.py), and a
multi-region bucket (US, EU) does not count as the region inside it.
"""

from __future__ import annotations

import warnings

# What labkit.start() checks when a lab names no APIs, and what a lab may name.
DEFAULT_APIS = ("bigquery.googleapis.com", "storage.googleapis.com", "aiplatform.googleapis.com")
KNOWN_APIS = DEFAULT_APIS + ("cloudresourcemanager.googleapis.com",)  # PipelineJob.submit()
BUCKET_APIS = {"storage.googleapis.com", "aiplatform.googleapis.com"}  # these need LAB_BUCKET


class PreflightError(RuntimeError):
    """What is not ready on the project, and the command that makes it ready."""


class PreflightSkipped(UserWarning):
    """A check could not run; the lab goes on, and the message says what to do if it fails."""


def check_names(apis) -> tuple[str, ...]:
    unknown = [a for a in apis if a not in KNOWN_APIS]
    if unknown:
        raise PreflightError(f"labkit.start(apis=...) names {unknown}; known APIs: "
                             f"{', '.join(KNOWN_APIS)}.")
    return tuple(dict.fromkeys(apis))


def enable_command(project: str, apis) -> str:
    return f"gcloud services enable {' '.join(apis)} --project={project}"


def check_apis(project: str, apis, credentials, http=None) -> None:
    """Raises PreflightError naming the APIs that are not enabled on the project.

    Asks the Service Usage API (services.batchGet) through google-api-python-client and its
    bundled discovery document; `http` replaces the transport (tests). When the client is
    not installed or the project refuses the question, warns and lets the lab go on.
    """
    if not apis:
        return
    try:
        from googleapiclient import discovery, errors
    except ImportError:
        warnings.warn(f"Could not check that {', '.join(apis)} are enabled: "
                      "google-api-python-client is not installed. If a call fails with "
                      f"SERVICE_DISABLED, run: {enable_command(project, apis)}",
                      PreflightSkipped, stacklevel=3)
        return
    names = [f"projects/{project}/services/{api}" for api in apis]
    try:
        service = discovery.build("serviceusage", "v1", static_discovery=True,
                                  cache_discovery=False,
                                  **({"http": http} if http else {"credentials": credentials}))
        answer = service.services().batchGet(parent=f"projects/{project}",
                                             names=names).execute()
    except errors.HttpError as exc:
        warnings.warn(f"Could not ask the Service Usage API whether {', '.join(apis)} are "
                      f"enabled ({exc.status_code}: {exc.reason}). If a call fails with "
                      f"SERVICE_DISABLED, run: {enable_command(project, apis)}",
                      PreflightSkipped, stacklevel=3)
        return
    enabled = {s.get("config", {}).get("name") or s["name"].rsplit("/", 1)[-1]
               for s in answer.get("services", []) if s.get("state") == "ENABLED"}
    disabled = [api for api in apis if api not in enabled]
    if disabled:
        raise PreflightError(f"This lab calls {', '.join(disabled)}, not enabled on project "
                             f"{project}. Enable it (a minute or two) with:\n  "
                             f"{enable_command(project, disabled)}")


def check_bucket(client, bucket: str, region: str) -> None:
    """Raises PreflightError if the bucket is missing or not in `region` (client: a
    google.cloud.storage.Client)."""
    from google.api_core import exceptions

    create = (f"gcloud storage buckets create gs://{bucket} --location={region} "
              f"--project={client.project}")
    try:
        found = client.lookup_bucket(bucket)
    except exceptions.Forbidden as exc:
        raise PreflightError(f"You may not read bucket gs://{bucket} ({exc.message}). Use a "
                             f"bucket of your project: {create}") from exc
    if found is None:
        raise PreflightError(f"Bucket gs://{bucket} (LAB_BUCKET) does not exist. Create it in "
                             f"the lab's region with:\n  {create}")
    location = (found.location or "").lower()
    if location == region.lower():
        return
    regional = f"{bucket}-{region.lower()}"[:63]
    advice = (f"Create a bucket in {region} and point LAB_BUCKET at it:\n"
              f"  {create.replace(f'gs://{bucket} ', f'gs://{regional} ')}\n"
              f"  export LAB_BUCKET={regional}")
    if "-" in location:  # a region, not a multi-region such as US or EU
        advice += f"\nor run the labs in the bucket's region: export LAB_REGION={location}"
    raise PreflightError(f"Bucket gs://{bucket} is in {found.location}, the labs run in "
                         f"{region}: Vertex AI refuses a bucket outside its region (a "
                         f"multi-region such as US does not count). {advice}")
