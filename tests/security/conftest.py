"""Fixtures for probing the local services as an attacker or an unlucky user would:
raw HTTP with and without the workspace secret."""

from __future__ import annotations

import pytest
import requests


@pytest.fixture(scope="session")
def token(local_env) -> str:
    return (local_env.workspace / "token").read_text().strip()


@pytest.fixture(scope="session")
def authed(token):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


@pytest.fixture(scope="session")
def anonymous():
    return requests.Session()
