"""Shared fixtures. Tests that need the local services use `local_env`.

Each test process (each xdist worker) serves the local services in-process, on a threaded
server over a fresh temporary workspace, so a run always tests the code on disk and never
joins a services process left from an earlier run. Notebooks (nbval) keep the detached
process that labkit.start() starts, as learners do.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SANDBOX = Path(tempfile.mkdtemp(prefix="labkit-tests-"))  # the workspace and its neighbours
WORKSPACE = SANDBOX / "workspace"
os.environ["LAB_WORKSPACE"] = str(WORKSPACE)
os.environ.pop("LAB_BACKEND", None)  # tests always run on the local backend
os.environ.pop("LAB_LOCAL_PROJECT", None)


@pytest.fixture(scope="session")
def local_env():
    import labkit
    from labkit.services import daemon
    from labkit.workspace import Workspace

    workspace = Workspace.from_env()
    daemon.stop(workspace)  # one an earlier test's kernel started (a graded notebook, say)
    running = daemon.Running(workspace, daemon.LOCAL_PROJECT)
    try:
        yield labkit.start("local")  # joins the in-process services
    finally:
        running.close()


@pytest.fixture
def ipython_shell():
    """An IPython shell for a test of magics, cleared afterwards: libraries that look for a
    running IPython (Beam labels transforms and imports its interactive runner then) would
    otherwise see one in every later test of the same worker."""
    from IPython.core.interactiveshell import InteractiveShell

    try:
        yield InteractiveShell.instance()
    finally:
        InteractiveShell.clear_instance()


def pytest_sessionfinish(session, exitstatus):
    from labkit.services import daemon
    from labkit.workspace import Workspace

    daemon.stop(Workspace(WORKSPACE))  # a detached one a test's kernel started
    shutil.rmtree(SANDBOX, ignore_errors=True)
