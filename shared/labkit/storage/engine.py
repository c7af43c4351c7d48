"""Buckets and objects: state and behaviour, no HTTP.

Writes go to a temporary file beside the target and are renamed into place, data first,
then metadata, so a failed or concurrent request never leaves half an object.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import google_crc32c

from labkit.services import uploads
from labkit.services.files import write_atomic
from labkit.storage import errors
from labkit.storage.paths import (
    FOLDER_OBJECT,
    TMP_MARK,
    InvalidName,
    bucket_dir,
    bucket_meta_path,
    check_bucket_name,
    check_object_name,
    folder_marker,
    is_temp,
    make_api_folders,
    meta_path,
    object_path,
)
from labkit.workspace import Workspace

DEFAULT_LOCATION = "US"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _glob_regex(pattern: str) -> re.Pattern:
    """Cloud Storage matchGlob: ** crosses '/', * and ? stay in a segment, [..], {a,b}."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):  # zero or more folders
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise errors.invalid(f"Invalid matchGlob: {pattern}")
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        elif c == "{":
            end = pattern.find("}", i + 1)
            if end < 0:
                raise errors.invalid(f"Invalid matchGlob: {pattern}")
            out.append("(?:" + "|".join(re.escape(a) for a in pattern[i + 1:end].split(","))
                       + ")")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out))
    except re.error:
        raise errors.invalid(f"Invalid matchGlob: {pattern}") from None


def hashes(path: Path) -> tuple[str, str]:
    """(md5Hash, crc32c) as the JSON API spells them: base64 of the digests."""
    md5, crc = hashlib.md5(), google_crc32c.Checksum()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
            crc.update(chunk)
    return base64.b64encode(md5.digest()).decode(), base64.b64encode(crc.digest()).decode()


class Store:
    def __init__(self, workspace: Workspace, project: str = "pmle-labs-local"):
        self.workspace = workspace
        self.project = project
        self.lock = threading.RLock()

    # ---- buckets -------------------------------------------------------------------
    def create_bucket(self, body: dict, project: str | None) -> dict:
        name = check_bucket_name(body.get("name") or "")
        with self.lock:
            meta = bucket_meta_path(self.workspace, name)
            if meta.exists():
                raise errors.bucket_exists(name)
            now = _now()
            resource = {
                "kind": "storage#bucket", "id": name, "name": name,
                "selfLink": f"/storage/v1/b/{name}", "projectNumber": "0",
                "project": project or self.project,
                "metageneration": "1", "location": (body.get("location") or DEFAULT_LOCATION)
                .upper(), "locationType": "multi-region" if not body.get("location") else
                "region", "storageClass": body.get("storageClass") or "STANDARD",
                "timeCreated": now, "updated": now, "etag": "CAE=",
                "labels": body.get("labels") or {},
                "iamConfiguration": body.get("iamConfiguration") or {
                    "uniformBucketLevelAccess": {"enabled": True}},
            }
            bucket_dir(self.workspace, name).mkdir(parents=True, exist_ok=True)
            write_atomic(meta, json.dumps(resource).encode())
            return resource

    def ensure_bucket(self, name: str, location: str | None = None) -> None:
        """Creates `name` if absent (labkit.start's default bucket)."""
        if not bucket_meta_path(self.workspace, name).exists():
            try:
                self.create_bucket({"name": name, "location": location}, None)
            except Exception as exc:  # noqa: BLE001 - a concurrent create is fine
                if not bucket_meta_path(self.workspace, name).exists():
                    raise exc

    def get_bucket(self, name: str) -> dict:
        meta = bucket_meta_path(self.workspace, name)
        try:
            return json.loads(meta.read_text())
        except FileNotFoundError:
            raise errors.no_bucket(name) from None

    def list_buckets(self, project: str | None, prefix: str = "") -> list[dict]:
        folder = self.workspace.root / "storage" / "buckets"
        found = []
        for meta in sorted(folder.glob("*.json")) if folder.exists() else []:
            resource = json.loads(meta.read_text())
            if resource["name"].startswith(prefix) and (
                    not project or resource.get("project") in (project, None)):
                found.append(resource)
        return found

    def patch_bucket(self, name: str, body: dict) -> dict:
        with self.lock:
            resource = self.get_bucket(name)
            for key in ("labels", "versioning", "lifecycle", "storageClass", "cors",
                        "iamConfiguration", "defaultEventBasedHold", "retentionPolicy"):
                if key in body:
                    if key == "labels":
                        labels = {**resource.get("labels", {}), **(body["labels"] or {})}
                        resource["labels"] = {k: v for k, v in labels.items() if v is not None}
                    else:
                        resource[key] = body[key]
            resource["metageneration"] = str(int(resource["metageneration"]) + 1)
            resource["updated"] = _now()
            write_atomic(bucket_meta_path(self.workspace, name), json.dumps(resource).encode())
            return resource

    def delete_bucket(self, name: str) -> None:
        with self.lock:
            self.get_bucket(name)
            if next(self.iter_names(name, ""), None) is not None:
                raise errors.bucket_not_empty(name)
            shutil.rmtree(bucket_dir(self.workspace, name), ignore_errors=True)
            shutil.rmtree(meta_path(self.workspace, name, ""), ignore_errors=True)
            bucket_meta_path(self.workspace, name).unlink()

    # ---- objects -------------------------------------------------------------------
    def _check_name(self, name: str) -> None:
        """Cloud Storage's rules, then what a tree of files cannot hold."""
        check_object_name(name)
        parts = name.split("/")
        if name.endswith("/") or "" in parts:
            raise errors.invalid(f"Object name '{name}' has an empty path segment: the local "
                                 f"Cloud Storage keeps objects as files, so folder placeholder "
                                 f"objects ('x/') and '//' are not supported.")
        if any(len(p.encode()) > 255 for p in parts):
            raise errors.invalid(f"Object name '{name[:64]}...' has a path segment over 255 "
                                 f"bytes: the local Cloud Storage keeps objects as files, and "
                                 f"a file name is at most 255 bytes. Add '/' to the name.")
        if any(p in (".", "..") for p in parts) or is_temp(name):
            raise errors.invalid(f"Object name '{name}' is not supported by the local "
                                 f"Cloud Storage ('.' and '..' path segments).")

    def _folder(self, bucket: str, name: str) -> Path:
        """The resource file of the folder object 'name' ('a/b/'), which Cloud Storage FUSE
        writes for a folder made under /gcs (labkit.storage.mount)."""
        check_object_name(name)
        marker = folder_marker(self.workspace, bucket, name, FOLDER_OBJECT)
        if not (marker.is_file() and object_path(self.workspace, bucket, name).is_dir()):
            raise errors.no_object(bucket, name)
        return marker

    def _file(self, bucket: str, name: str) -> Path:
        check_object_name(name)
        path = object_path(self.workspace, bucket, name)
        if not path.is_file():
            raise errors.no_object(bucket, name)
        return path

    def get_object(self, bucket: str, name: str) -> dict:
        """The object resource; metadata is (re)derived when the file changed underneath."""
        self.get_bucket(bucket)
        if name.endswith("/"):
            return json.loads(self._folder(bucket, name).read_text())
        path = self._file(bucket, name)
        stat = path.stat()
        meta = meta_path(self.workspace, bucket, name)
        try:
            resource = json.loads(meta.read_text())
        except (FileNotFoundError, ValueError):
            resource = None
        if resource and resource.get("_mtime_ns") == stat.st_mtime_ns and \
                int(resource["size"]) == stat.st_size:
            return resource
        md5, crc = hashes(path)
        created = datetime.fromtimestamp(stat.st_mtime, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        resource = self._resource(bucket, name, stat, md5, crc, {
            k: v for k, v in (resource or {}).items()
            if k in ("contentType", "metadata", "cacheControl", "contentEncoding",
                     "contentDisposition", "contentLanguage")}, created)
        with self.lock:
            write_atomic(meta, json.dumps(resource).encode())
        return resource

    def _resource(self, bucket: str, name: str, stat: os.stat_result, md5: str, crc: str,
                  fields: dict, created: str, metageneration: int = 1) -> dict:
        generation = str(stat.st_mtime_ns // 1000)
        return {
            "kind": "storage#object", "id": f"{bucket}/{name}/{generation}",
            "name": name, "bucket": bucket, "generation": generation,
            "metageneration": str(metageneration),
            "contentType": fields.get("contentType") or "application/octet-stream",
            "storageClass": "STANDARD", "size": str(stat.st_size), "md5Hash": md5,
            "crc32c": crc, "etag": base64.b64encode(generation.encode()).decode(),
            "timeCreated": created, "updated": created, "timeStorageClassUpdated": created,
            **{k: v for k, v in fields.items() if k != "contentType" and v is not None},
            "_mtime_ns": stat.st_mtime_ns,
        }

    def check_preconditions(self, bucket: str, name: str, query: dict) -> None:
        """ifGenerationMatch / ifGenerationNotMatch / ifMetagenerationMatch (0 = absent)."""
        wanted = {k: query.get(k) for k in ("ifGenerationMatch", "ifGenerationNotMatch",
                                            "ifMetagenerationMatch", "ifMetagenerationNotMatch")}
        if not any(v is not None for v in wanted.values()):
            return
        try:
            current = self.get_object(bucket, name)
            generation, metageneration = current["generation"], current["metageneration"]
        except Exception:  # noqa: BLE001 - absent object has generation 0
            generation, metageneration = "0", None
        if wanted["ifGenerationMatch"] is not None and wanted["ifGenerationMatch"] != generation:
            raise errors.precondition_failed()
        if wanted["ifGenerationNotMatch"] is not None and \
                wanted["ifGenerationNotMatch"] == generation:
            raise errors.precondition_failed()
        if wanted["ifMetagenerationMatch"] is not None and \
                wanted["ifMetagenerationMatch"] != metageneration:
            raise errors.precondition_failed()
        if wanted["ifMetagenerationNotMatch"] is not None and \
                wanted["ifMetagenerationNotMatch"] == metageneration:
            raise errors.precondition_failed()

    def put_object(self, bucket: str, name: str, source: Path | bytes, fields: dict,
                   query: dict | None = None) -> dict:
        """Stores bytes (or moves a finished temp file, which is consumed) as bucket/name.

        The new bytes are written and checked beside the bucket first; only a write that
        passes its checksums and preconditions replaces the previous generation.
        """
        staged = source if isinstance(source, Path) else None
        try:
            self.get_bucket(bucket)
            self._check_name(name)
            target = object_path(self.workspace, bucket, name)
            if staged is None:
                staged = bucket_dir(self.workspace, bucket) / f"{TMP_MARK}{uuid.uuid4().hex}"
                staged.parent.mkdir(parents=True, exist_ok=True)
                staged.write_bytes(source)
            md5, crc = hashes(staged)
            for key, digest in (("md5Hash", md5), ("crc32c", crc)):
                if fields.get(key) and fields[key] != digest:
                    raise errors.invalid(f"Provided {key} \"{fields[key]}\" doesn't match "
                                         f"calculated {key} \"{digest}\".")
            with self.lock:
                self.check_preconditions(bucket, name, query or {})
                if target.is_dir():
                    raise errors.invalid(f"The local Cloud Storage keeps objects as files and "
                                         f"'{name}/' already holds objects; choose another name.")
                try:
                    make_api_folders(self.workspace, bucket, target.parent)
                except (FileExistsError, NotADirectoryError):
                    raise errors.invalid(f"The local Cloud Storage keeps objects as files and "
                                         f"an object named like a parent folder of '{name}' "
                                         f"exists.") from None
                os.replace(staged, target)
                staged = None
                stat = target.stat()
                keep = {k: fields.get(k) for k in (
                    "contentType", "metadata", "cacheControl", "contentEncoding",
                    "contentDisposition", "contentLanguage")}
                resource = self._resource(bucket, name, stat, md5, crc, keep, _now())
                write_atomic(meta_path(self.workspace, bucket, name),
                              json.dumps(resource).encode())
                return resource
        finally:
            if staged is not None:
                staged.unlink(missing_ok=True)

    def patch_object(self, bucket: str, name: str, body: dict, query: dict) -> dict:
        with self.lock:
            self.check_preconditions(bucket, name, query)
            resource = self.get_object(bucket, name)
            for key in ("contentType", "cacheControl", "contentEncoding",
                        "contentDisposition", "contentLanguage"):
                if key in body:
                    resource[key] = body[key]
            if "metadata" in body:
                merged = {**(resource.get("metadata") or {}), **(body["metadata"] or {})}
                resource["metadata"] = {k: v for k, v in merged.items() if v is not None}
            resource["metageneration"] = str(int(resource["metageneration"]) + 1)
            resource["updated"] = _now()
            write_atomic(meta_path(self.workspace, bucket, name), json.dumps(resource).encode())
            return resource

    def delete_object(self, bucket: str, name: str, query: dict | None = None) -> None:
        with self.lock:
            self.get_bucket(bucket)
            self.check_preconditions(bucket, name, query or {})
            root = bucket_dir(self.workspace, bucket)
            if name.endswith("/"):  # a folder object: its files, if any, stay
                self._folder(bucket, name).unlink()
                parent = object_path(self.workspace, bucket, name)
            else:
                path = self._file(bucket, name)
                path.unlink()
                meta_path(self.workspace, bucket, name).unlink(missing_ok=True)
                parent = path.parent
            while parent != root:  # empty folders are not objects; drop them
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    def copy_object(self, bucket: str, name: str, dest_bucket: str, dest_name: str,
                    body: dict, query: dict) -> dict:
        self.get_bucket(bucket)
        source = self._file(bucket, name)
        fields = {k: v for k, v in self.get_object(bucket, name).items()
                  if k in ("contentType", "metadata", "cacheControl", "contentEncoding")}
        fields.update({k: v for k, v in body.items() if k in (
            "contentType", "metadata", "cacheControl", "contentEncoding")})
        return self.put_object(dest_bucket, dest_name, source.read_bytes(), fields, query)

    def compose(self, bucket: str, name: str, body: dict, query: dict) -> dict:
        sources = body.get("sourceObjects") or []
        if not sources or len(sources) > 32:
            raise errors.invalid("The number of source components provided must be "
                                 "between 1 and 32.")
        self.get_bucket(bucket)
        data = b"".join(self._file(bucket, s["name"]).read_bytes() for s in sources)
        destination = body.get("destination") or {}
        return self.put_object(bucket, name, data, destination, query)

    def iter_names(self, bucket: str, prefix: str):
        """Object names under `prefix`, sorted as Cloud Storage sorts them (by bytes)."""
        root = bucket_dir(self.workspace, bucket)
        try:
            start = object_path(self.workspace, bucket, prefix.rsplit("/", 1)[0]) \
                if "/" in prefix else root
        except InvalidName:  # a prefix that climbs out of the bucket matches nothing
            return
        if not start.is_dir():
            return
        names = []
        for folder, _dirs, files in os.walk(start):
            rel = os.path.relpath(folder, root)
            if rel != "." and f"{rel}/".startswith(prefix) and \
                    folder_marker(self.workspace, bucket, rel, FOLDER_OBJECT).is_file():
                names.append(f"{rel}/")  # a folder object, as Cloud Storage FUSE writes it
            for file in files:
                name = file if rel == "." else f"{rel}/{file}"
                if name.startswith(prefix) and not is_temp(name):
                    names.append(name)
        yield from sorted(names, key=lambda n: n.encode())

    def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "",
                     page_token: str | None = None, max_results: int = 1000,
                     start_offset: str = "", end_offset: str = "",
                     include_trailing_delimiter: bool = False, match_glob: str = "") -> dict:
        self.get_bucket(bucket)
        try:
            after = base64.urlsafe_b64decode(page_token.encode()).decode() if page_token else ""
        except (ValueError, UnicodeError):  # binascii.Error is a ValueError
            raise errors.invalid(f"Invalid pageToken: {page_token!r}") from None
        glob = _glob_regex(match_glob) if match_glob else None
        items, prefixes, last = [], [], None
        for name in self.iter_names(bucket, prefix):
            if (start_offset and name < start_offset) or (end_offset and name >= end_offset):
                continue
            if glob and not glob.fullmatch(name):
                continue
            entry, cut = name, -1
            if delimiter:
                cut = name.find(delimiter, len(prefix))
                if cut >= 0:
                    entry = name[:cut + len(delimiter)]
            if after and entry <= after:
                continue
            if len(items) + len(prefixes) >= max_results:
                return self._page(items, prefixes, last)
            if cut >= 0:  # under a deeper prefix (a folder object 'a/' included)
                if not prefixes or prefixes[-1] != entry:
                    prefixes.append(entry)
                    if include_trailing_delimiter and name == entry:
                        items.append(self.get_object(bucket, name))
                last = entry
            else:
                items.append(self.get_object(bucket, name))
                last = name
        return self._page(items, prefixes, None)

    def _page(self, items: list, prefixes: list, last: str | None) -> dict:
        page = {"kind": "storage#objects", "items": items}
        if prefixes:
            page["prefixes"] = prefixes
        if last is not None:
            page["nextPageToken"] = base64.urlsafe_b64encode(last.encode()).decode()
        return page

    @staticmethod
    def public(resource: dict, base_url: str) -> dict:
        """The resource as the API returns it, with links on the server at base_url."""
        bucket, name = resource["bucket"], quote(resource["name"], safe="")
        public = {k: v for k, v in resource.items() if not k.startswith("_")}
        public["selfLink"] = f"{base_url}/storage/v1/b/{bucket}/o/{name}"
        public["mediaLink"] = (f"{base_url}/download/storage/v1/b/{bucket}/o/{name}"
                               f"?generation={resource['generation']}&alt=media")
        return public

    # ---- resumable uploads ---------------------------------------------------------
    def _upload_paths(self, upload_id: str) -> tuple[Path, Path]:
        if not re.fullmatch(r"[0-9a-f]{32}", upload_id or ""):
            raise errors.gcs_error(404, "notFound", "No such upload session.")
        folder = self.workspace.root / "storage" / "uploads"
        return folder / f"{upload_id}.json", folder / f"{upload_id}.part"

    def start_upload(self, bucket: str, name: str, fields: dict, query: dict) -> str:
        self.get_bucket(bucket)
        self._check_name(name)
        self.check_preconditions(bucket, name, query)
        upload_id = uuid.uuid4().hex
        session, part = self._upload_paths(upload_id)
        session.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"")
        conditions = {k: v for k, v in query.items() if k.startswith("if")}
        write_atomic(session, json.dumps({"bucket": bucket, "name": name, "fields": fields,
                                           "query": conditions, "started": time.time()}).encode())
        return upload_id

    def cancel_upload(self, upload_id: str) -> None:
        for path in self._upload_paths(upload_id):
            path.unlink(missing_ok=True)

    def upload_chunk(self, upload_id: str, data: bytes, content_range: str | None
                     ) -> tuple[int, dict | None]:
        """Appends a chunk; returns (bytes persisted, object resource once complete)."""
        session_path, part = self._upload_paths(upload_id)
        try:
            session = json.loads(session_path.read_text())
        except FileNotFoundError:
            raise errors.gcs_error(404, "notFound", "No such upload session.") from None
        with self.lock:
            have = part.stat().st_size
            try:
                first, total = uploads.content_range(content_range)
            except uploads.BadUpload as exc:
                raise errors.invalid(str(exc)) from None
            if first is not None:
                if first > have:
                    raise errors.invalid(f"Chunk starts at {first}; {have} bytes persisted.")
                data = data[have - first:]  # a retried chunk overlaps what we have
            elif content_range is None:
                total = have + len(data)
            with open(part, "ab") as f:
                f.write(data)
            have += len(data)
            if total is None or have < total:
                return have, None
            try:
                resource = self.put_object(session["bucket"], session["name"], part,
                                           session["fields"], session["query"])
            finally:  # a finished session ends, stored or refused (as Cloud Storage does)
                part.unlink(missing_ok=True)
                session_path.unlink(missing_ok=True)
            return have, resource

    def read_range(self, bucket: str, name: str, header: str | None) -> tuple[bytes, tuple | None]:
        """The object's bytes, or the slice a Range header asks for with (start, end, size)."""
        if name.endswith("/"):
            self._folder(bucket, name)
            return b"", None
        path = self._file(bucket, name)
        size = path.stat().st_size
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", (header or "").strip())
        if not m or (not m.group(1) and not m.group(2)):
            return path.read_bytes(), None
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        else:
            start, end = max(size - int(m.group(2)), 0), size - 1
        if start >= size and size > 0:
            raise errors.gcs_error(416, "requestedRangeNotSatisfiable",
                                   "The requested range cannot be satisfied.")
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(max(end - start + 1, 0)), (start, end, size)
