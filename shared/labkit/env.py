"""labkit.start(): choose the backend and point the real client libraries at it.

The only backend-aware line in a lab is `env = labkit.start()`. Everything after it is
the code a learner would write against real Google Cloud.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from labkit.workspace import Workspace

BACKENDS = ("local", "gcp")
LOCAL_PROJECT = "pmle-labs-local"  # labkit.services.daemon.LOCAL_PROJECT says the same
DEFAULT_REGION = "us-central1"
# Set by the local services in the pipeline tasks and training replicas they start.
JOB_OF_SERVICES = "LAB_JOB_OF_SERVICES"

# Quiet TensorFlow's C++ start-up lines before any lab imports it (they drown the
# learner's output and break strict notebook output comparison).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class ConfigError(RuntimeError):
    """The chosen backend cannot start; the message says exactly what to set."""


@dataclass(frozen=True)
class Env:
    backend: str
    project: str
    region: str
    bucket: str
    workspace: Path
    endpoint: str | None = None  # base URL of the local services; None on gcp

    @property
    def bucket_uri(self) -> str:
        return f"gs://{self.bucket}"

    def __repr__(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return (f"Env(backend={self.backend!r}{where}, project={self.project!r}, "
                f"region={self.region!r}, bucket={self.bucket!r})")


_started: dict[str, Env] = {}
_checked_apis: set[str] = set()  # what gcp preflight has passed in this kernel


def start(backend: str | None = None, *, apis: Sequence[str] | None = None) -> Env:
    """Starts (or joins) the chosen backend and returns where labs should work.

    backend: "local" (default) or "gcp"; LAB_BACKEND sets it when not given.
    apis: the Google APIs the lab calls (default: BigQuery, Cloud Storage and Vertex AI);
    on gcp start() checks they are enabled, and asks for a bucket (in the region) and
    credentials only when the lab calls something. `apis=[]`: a lab that calls no service.
    Calling it again returns the same Env (and restarts the local services if they stopped).
    """
    from labkit import preflight

    backend = (backend or os.environ.get("LAB_BACKEND") or "local").strip().lower()
    if backend not in BACKENDS:
        raise ConfigError(f"LAB_BACKEND={backend!r} is not a backend; use one of {BACKENDS}.")
    try:
        apis = preflight.check_names(preflight.DEFAULT_APIS if apis is None else apis)
    except preflight.PreflightError as exc:
        raise ConfigError(str(exc)) from None
    known = _started.get(backend)
    if known and (_still_serving(known) if backend == "local" else _checked_apis >= set(apis)):
        return known
    if backend == "local":
        env = _start_local()
    else:
        env = _start_gcp(apis)
        _checked_apis.update(apis)
    _started[backend] = env
    return env


def _still_serving(env: Env) -> bool:
    from labkit.services import daemon

    port = daemon.running_port(Workspace(env.workspace), current=True)
    return port == int(env.endpoint.rsplit(":", 1)[1])


def _start_local() -> Env:
    from labkit.services import daemon

    workspace = Workspace.from_env()
    project = os.environ.get("LAB_LOCAL_PROJECT", LOCAL_PROJECT)
    # A pipeline task or training replica joins the services that started it as they are:
    # replacing them for newer code (an edited labkit module) would stop its own run.
    port = daemon.running_port(workspace) if os.environ.get(JOB_OF_SERVICES) else None
    port = port or daemon.ensure_running(workspace, project)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(client_environment(workspace, endpoint, project))
    _refresh_imported_clients()
    bucket = f"{project[:48]}-labs-{workspace.tag}"  # unique per workspace: see Workspace.tag
    env = Env("local", project, DEFAULT_REGION, bucket, workspace.root, endpoint)
    # The default bucket exists locally as it would in the learner's project; a direct
    # engine call (a file write) keeps start() fast.
    from labkit.storage.engine import Store

    Store(workspace, project).ensure_bucket(env.bucket, DEFAULT_REGION)
    _init_vertex(env, os.environ["GOOGLE_APPLICATION_CREDENTIALS"])
    return env


def _refresh_imported_clients() -> None:
    """httplib2 (Beam's BigQuery I/O) reads HTTPLIB2_CA_CERTS once, when it is imported: one
    imported before start() would check the proxy's certificate against its own bundle."""
    httplib2 = sys.modules.get("httplib2")
    if httplib2 is not None:
        httplib2.CA_CERTS = os.environ["HTTPLIB2_CA_CERTS"]


def client_environment(workspace: Workspace, endpoint: str, project: str) -> dict[str, str]:
    """What points the real client libraries of this kernel at the workspace's services
    (writes the credentials file they sign in with)."""
    from labkit.services import auth, clients

    auth.write_credentials(workspace, endpoint)
    return clients.client_environment(workspace, endpoint, project)


def _init_vertex(env: Env, credentials_file: str) -> None:
    """Points the Vertex AI SDK at the local services; a learner's later
    aiplatform.init(project=..., location=...) keeps endpoint, transport and credentials."""
    from google.auth import identity_pool
    from google.cloud import aiplatform

    credentials = identity_pool.Credentials.from_file(
        credentials_file, scopes=["https://www.googleapis.com/auth/cloud-platform"])
    aiplatform.init(project=env.project, location=env.region, staging_bucket=env.bucket_uri,
                    api_endpoint=env.endpoint, api_transport="rest", credentials=credentials)


def _gcloud(key: str) -> str | None:
    if not shutil.which("gcloud"):
        return None
    try:
        out = subprocess.run(["gcloud", "config", "get-value", key], capture_output=True,
                             text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out if out and out != "(unset)" else None


def _first(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def _start_gcp(apis: tuple[str, ...]) -> Env:
    """Reads project, region and bucket; with `apis` to call, checks credentials, that the
    APIs are enabled and that the bucket is in the region (labkit.preflight)."""
    from labkit import preflight

    project = _first("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT") or _gcloud("project")
    region = _first("LAB_REGION", "GOOGLE_CLOUD_REGION", "CLOUDSDK_COMPUTE_REGION") or _gcloud(
        "compute/region")
    bucket = (_first("LAB_BUCKET") or "").removeprefix("gs://").rstrip("/")
    workspace = Workspace.from_env().root
    if not apis:  # nothing on Google Cloud to call: no project, bucket or credentials needed
        return Env("gcp", project or "", region or DEFAULT_REGION, bucket, workspace)
    missing = []
    if not project:
        missing.append("the project: export GOOGLE_CLOUD_PROJECT=your-project-id "
                       "(or gcloud config set project your-project-id)")
    if not region:
        missing.append("the region: export LAB_REGION=us-central1 "
                       "(or gcloud config set compute/region us-central1)")
    if not bucket and preflight.BUCKET_APIS & set(apis):
        missing.append("a Cloud Storage bucket the labs may write to: export LAB_BUCKET=name "
                       "(create it with: gcloud storage buckets create gs://name "
                       "--location=REGION)")
    if missing:
        raise ConfigError("LAB_BACKEND=gcp needs\n  - " + "\n  - ".join(missing))

    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError as exc:
        raise ConfigError("LAB_BACKEND=gcp needs Application Default Credentials: run "
                          "`gcloud auth application-default login` (on Vertex AI Workbench "
                          "they are already set).") from exc
    try:
        preflight.check_apis(project, apis, credentials)
        if bucket:
            from google.cloud import storage

            client = storage.Client(project=project, credentials=credentials)
            preflight.check_bucket(client, bucket, region)
    except preflight.PreflightError as exc:
        raise ConfigError(str(exc)) from None
    return Env("gcp", project, region, bucket, workspace)
