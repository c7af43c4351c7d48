"""Fixtures for the strictness tests: raw HTTP for what the real SDKs cannot send."""

from __future__ import annotations

import pytest
import requests


@pytest.fixture(scope="module")
def http(local_env):
    session = requests.Session()
    session.headers["Authorization"] = \
        f"Bearer {(local_env.workspace / 'token').read_text().strip()}"
    return session
