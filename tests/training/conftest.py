"""Fixtures for the training tests: trainer scripts and where their outputs land."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TRAINERS = Path(__file__).parent / "trainers"


@pytest.fixture(scope="session")
def trainers(local_env) -> Path:
    return TRAINERS


@pytest.fixture(scope="session")
def read_json():
    """gs:// JSON object written by a trainer -> dict."""
    from labkit.storage import local_path
    from labkit.workspace import Workspace

    return lambda uri: json.loads(local_path(uri, Workspace.from_env()).read_text())
