"""Vertex's Cloud Storage FUSE convention: training code reads gs://B/x as /gcs/B/x.

Locally /gcs/B is a symbolic link to the workspace's folder for bucket B. Creating /gcs
needs write access to / (root, or a container); where that is refused the /gcs form is
simply unavailable and callers use gs:// through the client or `local_path`.
"""

from __future__ import annotations

import os
from pathlib import Path

from labkit.storage.paths import bucket_dir, split_uri
from labkit.workspace import Workspace

MOUNT_ROOT = Path("/gcs")


def mount_path(uri: str, workspace: Workspace) -> Path | None:
    """'/gcs/<bucket>/<name>' linked to this workspace, or None where /gcs can't be made.

    The link follows the workspace that last asked for it (one /gcs per machine).
    """
    bucket, name = split_uri(uri)
    target = bucket_dir(workspace, bucket)
    target.mkdir(parents=True, exist_ok=True)
    link = MOUNT_ROOT / bucket
    try:
        MOUNT_ROOT.mkdir(exist_ok=True)
        if os.path.realpath(link) != str(target.resolve()):
            tmp = MOUNT_ROOT / f".{bucket}.{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target, target_is_directory=True)
            os.replace(tmp, link)
    except OSError:
        return None
    return link / name
