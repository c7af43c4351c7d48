"""The environment that points the real Google client libraries of a process at one
workspace's local services: set in the learner's kernel by labkit.start(), and given to
the processes the services start (training replicas, pipeline tasks). Pure: it writes
nothing (the credentials file is written once by whoever starts the services)."""

from __future__ import annotations

from labkit import genai
from labkit.services import auth, proxy
from labkit.services.http import KEY_PREFIX
from labkit.workspace import Workspace


def storage_endpoint(workspace: Workspace, endpoint: str) -> str:
    """google-cloud-storage sends no credentials to an emulator; the workspace's path key
    in the endpoint authenticates every URL it builds (uploads, downloads)."""
    return f"{endpoint}{KEY_PREFIX}{workspace.path_key}"


def client_environment(workspace: Workspace, endpoint: str, project: str) -> dict[str, str]:
    return {
        "GOOGLE_CLOUD_PROJECT": project,
        "GOOGLE_APPLICATION_CREDENTIALS": str(auth.credentials_path(workspace)),
        "BIGQUERY_EMULATOR_HOST": endpoint,
        "STORAGE_EMULATOR_HOST": storage_endpoint(workspace, endpoint),
        # Code with Google's hostnames built in: PipelineJob.submit() asks Cloud Resource
        # Manager (gRPC) who owns the pipeline-root bucket, TensorFlow's gs:// file system
        # calls Cloud Storage (libcurl). These send those hosts to local stand-ins.
        **proxy.client_environment(workspace),
        # TensorFlow's gs:// sign-in reads no external_account file: this is the token it
        # sends (the local Cloud Storage accepts only this workspace's).
        "GOOGLE_AUTH_TOKEN_FOR_TESTING": workspace.token,
        **genai.client_environment(endpoint, project, "us-central1"),  # google-genai
    }
