"""What runs inside one pipeline task's process: the local stand-in for Vertex's task container.

On Vertex AI Pipelines a task's container sees Cloud Storage at /gcs/BUCKET (Cloud Storage
FUSE) and its Google clients reach Google. Here the KFP executor's /gcs prefix points at
the workspace's bucket folders, and the clients are pointed at the local services the way
labkit.start() points a notebook's clients at them.

    python -m labkit.vertex.pipelines.launch python COMPONENT_FILE ARGS...   # kfp executor
    python -m labkit.vertex.pipelines.launch google LAUNCHER_MODULE EXECUTOR_INPUT_FILE
    python -m labkit.vertex.pipelines.launch google ...remote_runner --cls_name C ARGS...

The runner starts tasks through `child` in a fork server that has imported the KFP executor
and the Google clients once (a fresh interpreter per task spends about a second importing).
"""

from __future__ import annotations

import os
import runpy
import sys


def _mount_buckets() -> None:
    from kfp.dsl.types import artifact_types

    from labkit.storage.paths import data_root
    from labkit.workspace import Workspace

    artifact_types._GCS_LOCAL_MOUNT_PREFIX = str(data_root(Workspace.from_env())) + "/"


def main(argv: list[str]) -> None:
    kind, target, *rest = argv
    _mount_buckets()
    if kind == "python":
        with open(target) as f:
            source = f.read()
        if "aiplatform" in source:  # the component calls Vertex AI: point the SDK locally
            import labkit

            labkit.start("local")
        os.environ["_KFP_RUNTIME"] = "true"
        sys.argv = ["executor_main", "--component_module_path", target, *rest]
        runpy.run_module("kfp.dsl.executor_main", run_name="__main__")
    elif kind == "google":
        import labkit
        from labkit.vertex.pipelines import google_ops, spec

        labkit.start("local")
        if target == spec.REMOTE_RUNNER:  # Google's launcher itself, on the local services
            sys.argv = [target, *rest]
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            google_ops.run(target, rest[0])
    else:
        raise SystemExit(f"unknown task kind {kind!r}")


def child(argv: list[str], env: dict, cwd: str, log_path: str) -> None:
    """Runs one task in a forked process: its own environment, folder and log file."""
    import traceback

    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code not in (None, 0) and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
