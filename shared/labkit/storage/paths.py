"""Where Cloud Storage state lives in the workspace.

Object bytes are plain files, so every gs://bucket/name has a local path that other
engines (BigQuery loads, training, pipelines) read and write directly. Metadata sits in a
parallel tree; an object written straight to its data file gets metadata derived from
the file when it is first listed or read.

    storage/buckets/<bucket>.json        bucket resource
    storage/data/<bucket>/<name>         object bytes
    storage/meta/<bucket>/<name>.json    object resource (optional)
    storage/uploads/<id>.json|.part      resumable upload sessions
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from labkit.workspace import Workspace

TMP_MARK = ".labkit-tmp-"  # partial writes; never listed as objects


def split_uri(uri: str) -> tuple[str, str]:
    """'gs://b/a/c.csv' -> ('b', 'a/c.csv'); '/gcs/b/a' (Vertex's FUSE form) works too."""
    if uri.startswith("gs://"):
        rest = uri[5:]
    elif uri.startswith("/gcs/"):
        rest = uri[5:]
    else:
        raise ValueError(f"{uri!r} is not a gs:// URI")
    bucket, _, name = rest.partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket")
    return bucket, name


def data_root(workspace: Workspace) -> Path:
    return workspace.root / "storage" / "data"


def bucket_dir(workspace: Workspace, bucket: str) -> Path:
    return data_root(workspace) / bucket


def object_path(workspace: Workspace, bucket: str, name: str) -> Path:
    return bucket_dir(workspace, bucket) / name


def meta_path(workspace: Workspace, bucket: str, name: str) -> Path:
    return workspace.root / "storage" / "meta" / bucket / (name + ".json")


def bucket_meta_path(workspace: Workspace, bucket: str) -> Path:
    return workspace.root / "storage" / "buckets" / (bucket + ".json")


def local_path(uri: str, workspace: Workspace | None = None) -> Path:
    """The local file behind gs://bucket/name (or gs://bucket/prefix/ for a folder).

    The parent folder is created so the path can be written (the folder itself for a URI
    ending in "/"); the bucket must exist to be seen through the Cloud Storage API.
    """
    workspace = workspace or Workspace.from_env()
    bucket, name = split_uri(uri)
    path = object_path(workspace, bucket, name)
    (path if uri.endswith("/") else path.parent).mkdir(parents=True, exist_ok=True)
    return path


def matching_files(uri: str, workspace: Workspace | None = None) -> list[Path]:
    """The files behind the objects a gs:// URI names: the object itself, or every object
    its `*` wildcards match (as Vertex reads batch and dataset sources). Empty if none."""
    bucket, pattern = split_uri(uri)
    if "*" not in pattern:
        path = local_path(uri, workspace)
        return [path] if path.is_file() else []
    root = local_path(f"gs://{bucket}/", workspace)
    return sorted(p for p in root.rglob("*") if p.is_file() and not is_temp(p.name)
                  and fnmatch.fnmatchcase(p.relative_to(root).as_posix(), pattern))


def is_temp(name: str) -> bool:
    return TMP_MARK in os.path.basename(name)
