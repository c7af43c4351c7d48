"""One background process per workspace hosts every local service.

Notebooks join it rather than each starting their own, so two open notebooks see the
same tables and models and never write the same files from two processes.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from labkit.services import wiring
from labkit.services.files import write_atomic
from labkit.services.http import LocalServer, Router
from labkit.workspace import Workspace

LOCAL_PROJECT = "pmle-labs-local"

STARTUP_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10


class Running:
    """One workspace's services, serving on a thread of this process: the detached
    process's whole life (serve) or a test session's (tests/conftest.py)."""

    def __init__(self, workspace: Workspace, project: str, port: int = 0):
        os.umask(0o077)  # every file the services (and the jobs they start) write is private
        # One owner per workspace: a second one would fight the first over the
        # workspace's files (DuckDB allows one writer process).
        self.workspace = workspace
        self._owner = open(workspace.path("services.owner"), "w")
        try:
            fcntl.flock(self._owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._owner.close()
            raise RuntimeError(f"Another services process already serves {workspace.root}; "
                               f"stop it with `python -m labkit.services stop` (make stop)."
                               ) from None
        try:
            server = LocalServer(Router(), workspace.token, workspace.path_key, port)
        except OSError:  # the previous port is taken now: any free one will do
            server = LocalServer(Router(), workspace.token, workspace.path_key, 0)
        self.server = server
        self.endpoint = f"http://127.0.0.1:{server.port}"
        self.services = wiring.build(workspace, self.endpoint, project)
        server.router = wiring.router(self.services)
        write_atomic(workspace.path("services.json"), json.dumps(
            {"pid": os.getpid(), "port": server.port, "started": time.time()}))
        write_atomic(workspace.path("services.port"), str(server.port))
        self.thread = threading.Thread(target=server.serve_forever, daemon=True,
                                       name="labkit-services")
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.services.close()
        (self.workspace.root / "services.json").unlink(missing_ok=True)  # only the owner
        self._owner.close()


def serve(workspace: Workspace, port: int = 0, project: str = LOCAL_PROJECT) -> None:
    """The detached services process: serves until SIGTERM."""
    try:
        running = Running(workspace, project, port)
    except RuntimeError as exc:
        sys.exit(str(exc))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"labkit services listening on {running.endpoint}", flush=True)
    try:
        stopped.wait()
    finally:
        running.close()


def _health(workspace: Workspace, port: int) -> dict | None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/labkit/health",
                                     headers={"Authorization": f"Bearer {workspace.token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.loads(response.read()) if response.status == 200 else None
    except (OSError, ValueError):
        return None


def running_port(workspace: Workspace, *, current: bool = False) -> int | None:
    """The port of this workspace's services if they answer (and, with current=True,
    run the code installed here)."""
    info = workspace.root / "services.json"
    if not info.exists():
        return None
    try:
        port = json.loads(info.read_text())["port"]
    except (ValueError, KeyError):
        return None
    health = _health(workspace, port)
    if health is None or (current and health.get("version") != wiring.code_version()):
        return None
    return port


def ensure_running(workspace: Workspace, project: str = LOCAL_PROJECT) -> int:
    """Returns the port of this workspace's services, starting them if none answer.
    A services process that runs older code than the installed package is replaced."""
    with open(workspace.path("services.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two notebooks starting at once start one process
        port = running_port(workspace)
        if port and running_port(workspace, current=True):
            return port
        if port:
            print("labkit: the local services run older code than is installed here; "
                  "restarting them.", file=sys.stderr)
            stop(workspace)
        # A successor binds its predecessor's port where it can, so kernels that started
        # earlier keep a working endpoint after the services restart.
        last = workspace.root / "services.port"
        previous = last.read_text().strip() if last.exists() else "0"
        log = open(workspace.path("logs", "services.log"), "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "labkit.services", "serve", "--port", previous,
             "--project", project],
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
