"""Runs one job spec (worker pools) as local processes: one process per replica.

Each replica runs in its own process group with its stdout and stderr in a log file under
the job's folder (vertex/training/<job id>/logs/workerpoolN-I.log). The job fails when any
replica fails (error.message carries the tail of that replica's log and the log's path),
succeeds when every chief/worker replica exits 0 (parameter servers, which never exit by
themselves, are then stopped), and is cancelled by killing every process group.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from labkit.storage import mount, mount_path
from labkit.storage.paths import data_root
from labkit.vertex.training import contract, requirements
from labkit.workspace import Workspace

POLL_S = 0.05
# On every replica's PYTHONPATH: its sitecustomize points the Vertex AI SDK at the local
# services when the trainer imports it (see that module).
REPLICA_SITE = str(Path(__file__).with_name("replica_site"))
LOG_TAIL_CHARS = 1500


@dataclass
class Outcome:
    state: str  # JOB_STATE_SUCCEEDED / _FAILED / _CANCELLED
    message: str = ""
    logs: list[Path] = field(default_factory=list)


BUCKET_REF = re.compile(r"(?:gs://|/gcs/)([a-z0-9][-a-z0-9_.]{1,220})")


def linked_buckets(workspace: Workspace, job: dict) -> list[str]:
    """The workspace's buckets the job names (gs://B or /gcs/B): linked at /gcs/B."""
    root = data_root(workspace)
    named = set(BUCKET_REF.findall(json.dumps(job["jobSpec"])))
    return sorted(b for b in named if (root / b).is_dir())


def link_buckets(workspace: Workspace, job: dict) -> str | None:
    """Links the buckets the job names at /gcs/BUCKET (Vertex's Cloud Storage FUSE form).

    /gcs is one per machine: it follows the workspace whose job started last. Returns a
    note for the job log when /gcs cannot be created on this machine.
    """
    for bucket in linked_buckets(workspace, job):
        if mount_path(f"gs://{bucket}/", workspace) is None:
            return ("NOTE: /gcs/BUCKET paths (Cloud Storage FUSE) are unavailable: this machine "
                    "does not let the local services create /gcs. Create it once with "
                    "`sudo mkdir -m 1777 /gcs`, or write outputs through the Cloud Storage "
                    "client (google.cloud.storage), which reaches the local Cloud Storage.\n")
    return None


def tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-LOG_TAIL_CHARS:].strip()


def run(workspace: Workspace, clients, job: dict, folder: Path, cancelled: threading.Event,
        trial: str | None = None, extra_args: list[str] | None = None,
        extra_env: dict[str, str] | None = None) -> Outcome:
    """Runs `job` (a CustomJob resource with a validated jobSpec) to its end;
    clients(project) is the environment that points its Google clients here."""
    pools = job["jobSpec"]["workerPoolSpecs"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    note = link_buckets(workspace, job)
    folders_before = mount.folders(workspace, linked_buckets(workspace, job))
    project = job["name"].split("/")[1]
    addresses = contract.cluster(pools)
    processes: list[tuple[str, subprocess.Popen, Path]] = []
    try:
        for p, pool in enumerate(pools):
            if not pool:
                continue
            uris = (pool.get("pythonPackageSpec") or {}).get("packageUris") or []
            paths = contract.stage_packages(uris, folder / "packages", workspace)
            problems = requirements.unmet(requirements.declared(paths))
            if problems:
                message = requirements.refusal(problems)
                (folder / "logs" / f"workerpool{p}-0.log").write_text(message + "\n")
                return Outcome("JOB_STATE_FAILED", message)
            argv = contract.program(pool) + list(extra_args or [])
            image = ((pool.get("pythonPackageSpec") or {}).get("executorImageUri")
                     or (pool.get("containerSpec") or {}).get("imageUri"))
            difference = requirements.image_difference(image)
            for index in range(int(pool.get("replicaCount") or 0)):
                env = {**contract.base_environ(), **contract.client_env(clients, project),
                       **contract.replica_env(job, addresses, p, index, trial),
                       **(extra_env or {}), **contract.pool_env(pool)}
                env["PYTHONPATH"] = os.pathsep.join(
                    [REPLICA_SITE, *paths, *filter(None, [env.get("PYTHONPATH")])])
                if not (pool.get("machineSpec") or {}).get("acceleratorType"):
                    env["CUDA_VISIBLE_DEVICES"] = ""  # a machine without GPUs sees none
                work = folder / "work" / f"workerpool{p}-{index}"
                work.mkdir(parents=True, exist_ok=True)
                log_path = folder / "logs" / f"workerpool{p}-{index}.log"
                with open(log_path, "w") as log:
                    for line in (note, difference):  # said at job start, in the job log
                        if line:
                            log.write(line)
                    log.flush()
                    proc = subprocess.Popen(argv, cwd=work, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
                processes.append((f"workerpool{p}-{index}", proc, log_path))
        outcome = _wait(processes, cancelled)
        # folders the code made under /gcs are folder objects, as Cloud Storage FUSE writes
        mount.record_folders(workspace, folders_before)
        return outcome
    except OSError as exc:
        return Outcome("JOB_STATE_FAILED", f"The replica could not start: {exc}")
    finally:
        for _, proc, _ in processes:
            _kill(proc)


def _wait(processes: list, cancelled: threading.Event) -> Outcome:
    logs = [log for _, _, log in processes]
    waiting = [(name, proc, log) for name, proc, log in processes
               if not name.startswith("workerpool2-")]  # parameter servers never exit
    while True:
        if cancelled.is_set():
            return Outcome("JOB_STATE_CANCELLED", "The job was cancelled.", logs)
        for name, proc, log in processes:
            code = proc.poll()
            if code not in (None, 0):
                return Outcome("JOB_STATE_FAILED",
                               f"The replica {name} exited with a non-zero status of {code}. "
                               f"To find out more about why your job exited please check "
                               f"the log: {log}\n{tail(log)}", logs)
        if all(proc.poll() == 0 for _, proc, _ in waiting):
            return Outcome("JOB_STATE_SUCCEEDED", "", logs)
        time.sleep(POLL_S)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
