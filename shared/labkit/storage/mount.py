"""Vertex's Cloud Storage FUSE convention: training code reads gs://B/x as /gcs/B/x.

Locally /gcs/B is a symbolic link to the workspace's folder for bucket B. Creating /gcs
needs write access to / (root, or a container); where that is refused the /gcs form is
simply unavailable and callers use gs:// through the client or `local_path`.

A folder made under /gcs (os.makedirs) is, on Cloud Storage FUSE, a zero-byte object named
'folder/' that listings return beside the files (Cloud Storage FUSE docs, "Files and
directories": mkdir creates a placeholder object with a trailing slash). Locally the job's
folders become such objects when the job ends (`record_folders`): every folder under a
linked bucket that the job's code made, not one the services made to hold an object.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from labkit.storage.paths import (
    API_FOLDER,
    FOLDER_OBJECT,
    bucket_dir,
    folder_marker,
    split_uri,
)
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


def folders(workspace: Workspace, buckets) -> dict[str, set[str]]:
    """The folders under each bucket now ('a', 'a/b', ...): taken before a job starts."""
    found = {}
    for bucket in buckets:
        root = bucket_dir(workspace, bucket)
        found[bucket] = {os.path.relpath(folder, root) for folder, _d, _f in os.walk(root)} \
            - {"."}
    return found


def record_folders(workspace: Workspace, before: dict[str, set[str]]) -> list[str]:
    """Folder objects ('gs://B/a/b/') for the folders a job made through /gcs since `before`
    (not the ones the services made for an object's file); returns their URIs."""
    made = []
    empty_md5 = base64.b64encode(hashlib.md5(b"").digest()).decode()
    for bucket, known in before.items():
        for rel in sorted(folders(workspace, [bucket])[bucket] - known):
            if folder_marker(workspace, bucket, rel, API_FOLDER).exists():
                continue
            marker = folder_marker(workspace, bucket, rel, FOLDER_OBJECT)
            stamp = (bucket_dir(workspace, bucket) / rel).stat().st_mtime
            when = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            generation = str(int(stamp * 1_000_000))
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({
                "kind": "storage#object", "id": f"{bucket}/{rel}//{generation}",
                "name": f"{rel}/", "bucket": bucket, "generation": generation,
                "metageneration": "1", "contentType": "application/octet-stream",
                "storageClass": "STANDARD", "size": "0", "md5Hash": empty_md5,
                "crc32c": "AAAAAA==", "etag": base64.b64encode(generation.encode()).decode(),
                "timeCreated": when, "updated": when, "timeStorageClassUpdated": when}))
            made.append(f"gs://{bucket}/{rel}/")
    return made
