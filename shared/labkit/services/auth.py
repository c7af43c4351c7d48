"""Credentials for the real client libraries, minted by a local token endpoint.

google-auth refreshes `external_account` credentials against their `token_url` (an STS
token exchange), so a credentials file naming our endpoint makes `bigquery.Client()`
and `aiplatform` send `Authorization: Bearer <workspace token>` with no Google call.
(An `authorized_user` file would not work: google-auth always refreshes it at Google.)
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from labkit.services.files import write_atomic
from labkit.services.http import HttpError, Request, Router
from labkit.workspace import Workspace

TOKEN_PATH = "/labkit/token"


def credentials_path(workspace: Workspace):
    return workspace.path("auth", "credentials.json")


def write_credentials(workspace: Workspace, base_url: str) -> str:
    """Writes the credentials file for `base_url` and returns its path."""
    subject = workspace.path("auth", "subject_token")
    write_atomic(subject, workspace.token)
    creds = {
        "type": "external_account",
        # No projects/<number> in the audience: google-auth would then look the project up
        # at Cloud Resource Manager, which is not reachable offline.
        "audience": "//iam.googleapis.com/locations/global/workloadIdentityPools/labkit/"
                    "providers/local",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": base_url + TOKEN_PATH,
        "credential_source": {"file": str(subject)},
    }
    path = credentials_path(workspace)
    write_atomic(path, json.dumps(creds, indent=2))  # other kernels may be reading it
    return str(path)


def register(router: Router, services) -> None:
    token = services.workspace.token

    def exchange(request: Request) -> dict:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("subject_token") != token:
            raise HttpError(401, {"error": "invalid_grant",
                                  "error_description": "subject token is not this workspace's"})
        return {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}

    router.add("POST", TOKEN_PATH, exchange, needs_token=False)
