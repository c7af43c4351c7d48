"""Shared fixtures. Tests that need the local services use `local_env`; all test
processes (xdist workers included) share one workspace under build/, so they share
one services process, as notebooks do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("LAB_WORKSPACE", str(REPO / "build" / "test-workspace"))
os.environ.pop("LAB_BACKEND", None)  # tests always run on the local backend


@pytest.fixture(scope="session")
def local_env():
    import labkit

    return labkit.start("local")
