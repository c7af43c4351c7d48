"""One background process per workspace hosts every local service.

Notebooks join it rather than each starting their own, so two open notebooks see the
same tables and models and never write the same files from two processes.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from labkit.services.http import LocalServer, Router
from labkit.workspace import Workspace, write_atomic

# Each module exposes register(router, workspace). Order matters only for overlapping
# patterns, and the services' URL prefixes do not overlap.
SERVICES = [
    "labkit.services.auth",
    "labkit.services.resource_manager",
    "labkit.bigquery.service",
    "labkit.storage.service",
    "labkit.vertex.service",
    "labkit.vertex.metadata.service",
    "labkit.vertex.pipelines.service",
    "labkit.vertex.automl.service",
    "labkit.vertex.training.service",
    "labkit.vertex.monitoring.service",
    "labkit.genai.routes",
]

STARTUP_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10


def build_router(workspace: Workspace) -> Router:
    router = Router()
    names = []
    for name in SERVICES:
        importlib.import_module(name).register(router, workspace)
        names.append(name.rsplit(".", 1)[-1])
    router.add("GET", "/labkit/health", lambda request: {"status": "ok", "pid": os.getpid(),
                                                          "services": names})
    return router


def serve(workspace: Workspace, port: int = 0) -> None:
    os.umask(0o077)  # every file the services (and the jobs they start) write is private
    # One owner per workspace for the life of the process: a second one would fight the
    # first over the workspace's files (DuckDB allows one writer process).
    owner = open(workspace.path("services.owner"), "w")
    try:
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"Another services process already serves {workspace.root}; "
                 f"stop it with `python -m labkit.services stop` (make stop).")
    router = build_router(workspace)
    try:
        server = LocalServer(router, workspace.token, workspace.path_key, port)
    except OSError:  # the previous port is taken now: any free one will do
        server = LocalServer(router, workspace.token, workspace.path_key, 0)
    state = {"pid": os.getpid(), "port": server.port, "started": time.time()}
    info = workspace.path("services.json")
    write_atomic(info, json.dumps(state))
    write_atomic(workspace.path("services.port"), str(server.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"labkit services listening on http://127.0.0.1:{server.port}", flush=True)
    try:
        server.serve_forever()
    finally:  # only the owner removes what names it
        info.unlink(missing_ok=True)


def _healthy(workspace: Workspace, port: int) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/labkit/health",
                                     headers={"Authorization": f"Bearer {workspace.token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def running_port(workspace: Workspace) -> int | None:
    info = workspace.root / "services.json"
    if not info.exists():
        return None
    try:
        port = json.loads(info.read_text())["port"]
    except (ValueError, KeyError):
        return None
    return port if _healthy(workspace, port) else None


def endpoint(workspace: Workspace) -> str:
    """Base URL of this workspace's services, for engines inside the services process that
    reach a sibling service through the real client libraries."""
    try:
        port = json.loads((workspace.root / "services.json").read_text())["port"]
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeError(f"No local services are running for {workspace.root}") from exc
    return f"http://127.0.0.1:{port}"


def ensure_running(workspace: Workspace) -> int:
    """Returns the port of this workspace's services, starting them if none answer."""
    with open(workspace.path("services.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two notebooks starting at once start one process
        port = running_port(workspace)
        if port:
            return port
        # A successor binds its predecessor's port where it can, so kernels that started
        # earlier keep a working endpoint after the services restart.
        last = workspace.root / "services.port"
        previous = last.read_text().strip() if last.exists() else "0"
        log = open(workspace.path("logs", "services.log"), "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "labkit.services", "serve", "--port", previous],
            env={**os.environ, "LAB_WORKSPACE": str(workspace.root)},
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the kernel that started it
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("The local services failed to start; see "
                                   f"{workspace.root / 'logs' / 'services.log'}")
            port = running_port(workspace)
            if port:
                return port
            time.sleep(0.05)
        process.kill()
        raise RuntimeError(f"The local services did not answer within {STARTUP_TIMEOUT_S} s; "
                           f"see {workspace.root / 'logs' / 'services.log'}")


def stop(workspace: Workspace) -> bool:
    """Stops this workspace's services; True if a process was stopped."""
    info: Path = workspace.root / "services.json"
    if not info.exists():
        return False
    try:
        pid = json.loads(info.read_text())["pid"]
        if not _is_services_process(pid):
            raise ProcessLookupError(pid)
        os.kill(pid, signal.SIGTERM)
    except (ValueError, KeyError, ProcessLookupError):
        info.unlink(missing_ok=True)  # names a process that is gone
        return False
    # Wait until it is gone: a successor must not start while this one still holds the
    # workspace's files.
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            info.unlink(missing_ok=True)
        time.sleep(0.05)
    return True


def _is_services_process(pid: int) -> bool:
    """Guards against signalling an unrelated process that reused a dead server's pid."""
    try:
        return b"labkit.services" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return _alive(pid) if not Path("/proc/self").exists() else False  # no /proc: macOS


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reaps it when this process started it
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
