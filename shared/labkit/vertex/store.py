"""Vertex resources persisted in the workspace: one JSON file per resource.

vertex/<collection>/<id>.json, written to a temporary file and renamed, under one lock:
the services process is the only writer, so a lock per process is enough. The process has
one store (labkit.services.wiring builds it), so one lock guards each read-modify-write
(a model version uploaded by a training pipeline while the registry route patches it).
"""

from __future__ import annotations

import json
import random
import re
import threading
from datetime import UTC, datetime
from pathlib import Path

from labkit.services.files import write_atomic
from labkit.vertex import errors
from labkit.workspace import Workspace

SAFE_ID = re.compile(r"[A-Za-z0-9_.@~=-]{1,255}")  # '~' joins the parts of nested names


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# From the OS, not the global random module: libraries that run in the services process
# reseed that (FLAML's AutoML search, keras.utils.set_random_seed in BigQuery ML's DNN), after
# which every run drew the same ids and a second pipeline run's execution "already existed".
_IDS = random.SystemRandom()


def new_id() -> str:
    """Vertex resource IDs are large decimal numbers."""
    return str(_IDS.randint(10**18, 9 * 10**18))


class ResourceStore:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.root = workspace.root / "vertex"
        self.lock = threading.RLock()

    def _path(self, collection: str, rid: str) -> Path | None:
        """The file of one resource; None for an id that is no single file name (ids come
        from URLs: '..%2F..%2Fx' must not name a file outside the store)."""
        if not isinstance(rid, str) or not SAFE_ID.fullmatch(rid) or rid in (".", ".."):
            return None
        return self.root / collection / f"{rid}.json"

    def get(self, collection: str, rid: str) -> dict | None:
        path = self._path(collection, rid)
        try:
            return json.loads(path.read_text()) if path else None
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None

    def put(self, collection: str, rid: str, resource: dict) -> dict:
        path = self._path(collection, rid)
        if path is None:
            raise errors.invalid(f"Invalid resource id: {rid!r}")
        write_atomic(path, json.dumps(resource, indent=1))
        return resource

    def delete(self, collection: str, rid: str) -> None:
        path = self._path(collection, rid)
        if path is not None:
            path.unlink(missing_ok=True)

    def all(self, collection: str) -> list[dict]:
        folder = self.root / collection
        if not folder.exists():
            return []
        found = []
        for path in folder.glob("*.json"):
            try:
                found.append(json.loads(path.read_text()))
            except ValueError:
                continue
        return sorted(found, key=lambda r: r.get("createTime", ""))
