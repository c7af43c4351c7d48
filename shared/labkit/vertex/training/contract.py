"""What a training replica sees: the program to run and the environment Vertex gives it.

Prebuilt training images (us-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-6:latest,
tf-cpu..., xgboost-cpu..., pytorch-..., and their older gcr.io/cloud-aiplatform/training/...
names), checked against Google's list in labkit.vertex.containers (unknown or retired images
are refused as Vertex refuses them), map to this machine's Python, which carries
TensorFlow, scikit-learn and XGBoost. Any other container image cannot run without Docker
and fails with a Vertex-shaped error naming it.

Python packages (pythonPackageSpec.packageUris, gs://...tar.gz or .whl) are unpacked from
the local Cloud Storage into the job's folder and put on PYTHONPATH, nothing is installed:
the packages' own dependencies must already be in this environment.

Environment, as Google documents it for custom training containers:
AIP_MODEL_DIR, AIP_CHECKPOINT_DIR, AIP_TENSORBOARD_LOG_DIR (gs:// under baseOutputDirectory;
<base>/<trial>/... for tuning trials), CLOUD_ML_JOB_ID, CLUSTER_SPEC (worker pools by
name), TF_CONFIG for distributed jobs (workerpool0 = chief, 1 = worker, 2 = ps,
3 = evaluator, on 127.0.0.1 ports allocated per job), CLOUD_ML_TRIAL_ID / AIP_TRIAL_ID and
CLOUD_ML_HP_METRIC_FILE (one file per trial, so parallel trials' cloudml-hypertune reports
never mix), the job's own env and args. A replica also gets the local Google client
settings (STORAGE_EMULATOR_HOST, BIGQUERY_EMULATOR_HOST, GOOGLE_APPLICATION_CREDENTIALS),
as a Vertex job gets its service account.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import tarfile
import zipfile
from pathlib import Path

from labkit.storage import local_path
from labkit.vertex import errors
from labkit.workspace import Workspace

ROLES = ("chief", "worker", "ps", "evaluator")  # TF_CONFIG task types of workerpool0..3


def check_image(uri: str) -> None:
    """A prebuilt training image Google lists and still offers (labkit.vertex.containers:
    unknown or retired ones are refused, one past end of patch is logged); any other image
    is a custom container, which needs Docker."""
    from labkit.vertex import containers

    if containers.check(uri or "", "training") is None:
        raise errors.gcp_only(f"Training with the custom container image {uri!r} (only Vertex's "
                              f"prebuilt training images run locally, as this machine's Python)")


def stage_packages(uris: list[str], folder: Path, workspace: Workspace) -> list[str]:
    """Unpacks source distributions / wheels from Cloud Storage; returns PYTHONPATH entries."""
    paths = []
    for n, uri in enumerate(uris):
        source = local_path(uri.replace("/gcs/", "gs://", 1) if uri.startswith("/gcs/") else uri,
                            workspace)
        if not source.is_file():
            raise errors.invalid(f"Python package {uri} does not exist.")
        target = folder / f"package{n}"
        target.mkdir(parents=True, exist_ok=True)
        if source.name.endswith(".whl"):
            with zipfile.ZipFile(source) as archive:
                archive.extractall(target)
            paths.append(str(target))
            continue
        try:
            with tarfile.open(source) as archive:
                archive.extractall(target, filter="data")
        except tarfile.TarError as exc:
            raise errors.invalid(f"Python package {uri} is not a tar.gz source distribution: "
                                 f"{exc}") from exc
        roots = [p.parent for p in target.glob("*/setup.py")] + \
                [p.parent for p in target.glob("*/pyproject.toml")] or [target]
        for root in dict.fromkeys(roots):
            paths.append(str(root / "src" if (root / "src").is_dir() else root))
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def program(pool: dict) -> list[str]:
    """argv for one replica of a worker pool (validated at create time)."""
    if "pythonPackageSpec" in pool:
        spec = pool["pythonPackageSpec"]
        return [sys.executable, "-m", spec["pythonModule"], *spec.get("args", [])]
    spec = pool["containerSpec"]
    command = list(spec.get("command") or [])
    if not command:
        raise errors.invalid("container_spec.command is required locally: prebuilt training "
                             "images have no entrypoint of their own.")
    if re.fullmatch(r"python(3(\.\d+)?)?", command[0]):
        command[0] = sys.executable
    return [*command, *spec.get("args", [])]


def pool_env(pool: dict) -> dict[str, str]:
    spec = pool.get("pythonPackageSpec") or pool.get("containerSpec") or {}
    return {e["name"]: e.get("value", "") for e in spec.get("env", [])}


def output_dirs(base: str | None, trial: str | None = None) -> dict[str, str]:
    if not base:
        return {}
    base = base.rstrip("/") + (f"/{trial}" if trial else "")
    return {"AIP_MODEL_DIR": f"{base}/model/", "AIP_CHECKPOINT_DIR": f"{base}/checkpoints/",
            "AIP_TENSORBOARD_LOG_DIR": f"{base}/logs/"}


def cluster(pools: list[dict]) -> dict[str, list[str]]:
    """workerpoolN -> ['127.0.0.1:port', ...], one free port per replica."""
    return {f"workerpool{i}": [f"127.0.0.1:{free_port()}"
                               for _ in range(int(p.get("replicaCount") or 0))]
            for i, p in enumerate(pools) if p}


def replica_env(job: dict, addresses: dict[str, list[str]], pool: int, index: int,
                trial: str | None = None) -> dict[str, str]:
    """The Vertex-defined variables for replica `index` of worker pool `pool`."""
    job_id = job["name"].rsplit("/", 1)[-1]
    spec = job["jobSpec"]
    # CLOUD_ML_PROJECT_ID: Google's trainers read it (custom-tabular-bq-managed-dataset:
    # bigquery.Client(project=os.environ["CLOUD_ML_PROJECT_ID"])); it is the job's project
    env = {"CLOUD_ML_JOB_ID": job_id, "CLOUD_ML_PROJECT_ID": job["name"].split("/")[1],
           **output_dirs((spec.get("baseOutputDirectory") or {}).get("outputUriPrefix"), trial)}
    task = {"type": f"workerpool{pool}", "index": index}
    if trial:
        task["trial"] = trial
        env.update(CLOUD_ML_TRIAL_ID=trial, AIP_TRIAL_ID=trial)
    env["CLUSTER_SPEC"] = json.dumps({"cluster": addresses, "environment": "cloud",
                                      "task": task, "job": json.dumps(spec)})
    replicas = sum(len(a) for a in addresses.values())
    if replicas > 1:
        tf_cluster = {ROLES[int(name[10:])]: list(a) for name, a in addresses.items()
                      if ROLES[int(name[10:])] != "evaluator"}
        tf_task = {"type": ROLES[pool], "index": index, **({"trial": trial} if trial else {})}
        env["TF_CONFIG"] = json.dumps({"cluster": tf_cluster, "task": tf_task,
                                       "environment": "cloud", "job": spec})
    return env


def client_env(clients, project: str) -> dict[str, str]:
    """Local Google client settings, standing in for the job's service account
    (`clients(project)`: labkit.services.wiring.Services.client_environment)."""
    # LAB_JOB_OF_SERVICES (labkit.env.JOB_OF_SERVICES): labkit.start() in the replica joins
    # these services and never replaces them.
    return {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1", "LAB_JOB_OF_SERVICES": "1",
            **clients(project)}


def base_environ() -> dict[str, str]:
    """The services process's environment minus what would confuse a trainer."""
    drop = {"TF_CONFIG", "CLUSTER_SPEC", "CLOUD_ML_HP_METRIC_FILE", "PYTHONPATH"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AIP_")}
