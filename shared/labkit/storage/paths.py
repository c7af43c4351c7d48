"""Where Cloud Storage state lives in the workspace.

Object bytes are plain files, so every gs://bucket/name has a local path that other
engines (BigQuery loads, training, pipelines) read and write directly. Metadata sits in a
parallel tree; an object written straight to its data file gets metadata derived from
the file when it is first listed or read.

    storage/buckets/<bucket>.json        bucket resource
    storage/data/<bucket>/<name>         object bytes
    storage/meta/<bucket>/<name>.json    object resource (optional)
    storage/uploads/<id>.json|.part      resumable upload sessions

Every name is checked here, where it becomes a path: bucket and object names follow
Cloud Storage's naming rules, and a path built from them must stay inside its folder
after resolution (symbolic links included), whoever asks (the Storage routes, BigQuery
loads, Vertex jobs).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
from pathlib import Path

from labkit.services.files import TMP_MARK
from labkit.workspace import Workspace

# https://cloud.google.com/storage/docs/buckets#naming : 3-63 characters (222 with dots,
# each dot-separated part up to 63), lower-case letters, digits, '-', '_' and '.', starting
# and ending with a letter or digit; no "goog" prefix, no "google", not an IP address.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
# https://cloud.google.com/storage/docs/objects#naming : 1-1024 bytes of UTF-8, no CR or
# LF, not "." or "..", not under .well-known/acme-challenge/. Other control characters
# are refused too (the XML API cannot carry them; a NUL cannot be a file name).
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidName(ValueError):
    """A bucket or object name Cloud Storage refuses (the routes answer 400 with it)."""


def check_bucket_name(bucket: object) -> str:
    if not isinstance(bucket, str) or not BUCKET_NAME.fullmatch(bucket) or ".." in bucket \
            or bucket.startswith("goog") or "google" in bucket or "g00gle" in bucket \
            or any(len(part) > 63 for part in bucket.split(".")) \
            or (len(bucket) > 63 and "." not in bucket) or _is_ip(bucket):
        raise InvalidName(f"Invalid bucket name: '{bucket}'")
    return bucket


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def check_object_name(name: object) -> str:
    if not isinstance(name, str) or not name or name in (".", "..") or CONTROL.search(name) \
            or name.startswith(".well-known/acme-challenge/"):
        raise InvalidName(f"Invalid object name: {name!r}")
    try:
        size = len(name.encode())
    except UnicodeEncodeError:  # a lone surrogate from a bad percent-escape
        raise InvalidName(f"Invalid object name: {name!r} is not valid UTF-8") from None
    if size > 1024:
        raise InvalidName("The maximum object length is 1024 characters, but got a name with "
                          f"{size} characters: '{name[:64]}...'")
    return name


def _inside(root: Path, relative: str) -> Path:
    """root/relative, refused unless it stays inside root once resolved."""
    if relative.startswith("/") or "\0" in relative:
        raise InvalidName(f"Invalid object name: {relative!r}")
    path = root / relative
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise InvalidName(f"Object name {relative!r} is not supported by the local Cloud "
                          f"Storage: it names a file outside its bucket.")
    return path


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
    return data_root(workspace) / check_bucket_name(bucket)


def object_path(workspace: Workspace, bucket: str, name: str) -> Path:
    """The data file of bucket/name ('' or a prefix ending in '/' name a folder)."""
    return _inside(bucket_dir(workspace, bucket), name)


def meta_path(workspace: Workspace, bucket: str, name: str) -> Path:
    folder = workspace.root / "storage" / "meta" / check_bucket_name(bucket)
    return _inside(folder, name + ".json") if name else folder


# meta/<bucket>/<folder>/ markers. FOLDER_OBJECT holds the resource of the zero-byte object
# 'folder/' that Cloud Storage FUSE writes when code makes a folder under /gcs; API_FOLDER marks
# a folder the services made only to hold an object's file (no object of its own).
FOLDER_OBJECT = ".json"
API_FOLDER = ".api-folder"


def folder_marker(workspace: Workspace, bucket: str, folder: str, marker: str) -> Path:
    """meta/<bucket>/<folder>/<marker> for the folder 'a/b' (or 'a/b/')."""
    meta_root = workspace.root / "storage" / "meta" / check_bucket_name(bucket)
    return _inside(meta_root, folder.strip("/") + "/" + marker)


def make_api_folders(workspace: Workspace, bucket: str, folder: Path) -> None:
    """mkdir -p of an object's parent folder, marking each folder it creates as made by
    the services (so it is never taken for a Cloud Storage FUSE folder object)."""
    root = bucket_dir(workspace, bucket)
    missing = []
    current = folder
    while current != root and not current.exists() and root in current.parents:
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    for made in missing:
        marker = folder_marker(workspace, bucket, made.relative_to(root).as_posix(), API_FOLDER)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


def bucket_meta_path(workspace: Workspace, bucket: str) -> Path:
    return workspace.root / "storage" / "buckets" / (check_bucket_name(bucket) + ".json")


def local_path(uri: str, workspace: Workspace) -> Path:
    """The local file behind gs://bucket/name (or gs://bucket/prefix/ for a folder).

    The parent folder is created so the path can be written (the folder itself for a URI
    ending in "/"); the bucket must exist to be seen through the Cloud Storage API.
    """
    bucket, name = split_uri(uri)
    path = object_path(workspace, bucket, name)
    make_api_folders(workspace, bucket, path if uri.endswith("/") else path.parent)
    return path


def matching_files(uri: str, workspace: Workspace) -> list[Path]:
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
