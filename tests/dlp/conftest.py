"""The real google-cloud-dlp client, built with no arguments after labkit.start(): gRPC to
dlp.googleapis.com, which the proxy routes to the local Sensitive Data Protection."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dlp(local_env):
    from google.cloud import dlp_v2

    return dlp_v2.DlpServiceClient()


@pytest.fixture(scope="session")
def parent(local_env) -> str:
    return f"projects/{local_env.project}/locations/global"
