"""What runs inside one pipeline task's process: the local stand-in for Vertex's task container.

On Vertex AI Pipelines a task's container sees Cloud Storage at /gcs/BUCKET (Cloud Storage
FUSE) and its Google clients reach Google. Here the KFP executor's /gcs prefix points at
the workspace's bucket folders, and the clients are pointed at the local services the way
labkit.start() points a notebook's clients at them.

    python -m labkit.vertex.pipelines.launch python COMPONENT_FILE ARGS...   # kfp executor
    python -m labkit.vertex.pipelines.launch google LAUNCHER_MODULE EXECUTOR_INPUT_FILE
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
        from labkit.vertex.pipelines import google_ops

        labkit.start("local")
        google_ops.run(target, rest[0])
    else:
        raise SystemExit(f"unknown task kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
