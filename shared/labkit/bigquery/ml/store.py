"""Models on disk: root/<project>/<dataset>/<model>/ holds resource.json (the REST Model
resource) and model.joblib (the trained model). A model folder is built under a temporary
name and renamed into place, and resource.json is replaced atomically, so a crash never
leaves a half-written model; loaded models are cached by file modification time."""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from pathlib import Path

import joblib

from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.model import TrainedModel
from labkit.bigquery.ml.statements import ModelRef
from labkit.services.files import write_atomic

_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-:.")


def _check(part: str) -> str:
    if not part or part.startswith(".") or not set(part) <= _SAFE:
        raise MLError(f"Invalid model or dataset name: {part!r}")
    return part


class ModelStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.lock = threading.RLock()
        self._cache: dict[tuple, tuple[float, TrainedModel]] = {}

    def folder(self, ref: ModelRef) -> Path:
        return self.root / _check(ref.project) / _check(ref.dataset) / _check(ref.model)

    def exists(self, ref: ModelRef) -> bool:
        return (self.folder(ref) / "resource.json").exists()

    def save(self, ref: ModelRef, model: TrainedModel, resource: dict) -> None:
        final = self.folder(ref)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            joblib.dump(model, staging / "model.joblib")
            (staging / "resource.json").write_text(json.dumps(resource))
            with self.lock:
                old = None
                if final.exists():
                    old = final.parent / f".old-{uuid.uuid4().hex}"
                    os.rename(final, old)
                os.rename(staging, final)
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def resource(self, ref: ModelRef) -> dict:
        path = self.folder(ref) / "resource.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise KeyError(str(ref)) from None

    def write_resource(self, ref: ModelRef, resource: dict) -> None:
        write_atomic(self.folder(ref) / "resource.json", json.dumps(resource))

    def load(self, ref: ModelRef) -> TrainedModel:
        path = self.folder(ref) / "model.joblib"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            raise MLError(f"Not found: Model {ref}", "notFound") from None
        key = (ref.project, ref.dataset, ref.model)
        cached = self._cache.get(key)
        if cached and cached[0] == mtime:
            return cached[1]
        model = joblib.load(path)
        self._cache[key] = (mtime, model)
        return model

    def delete(self, ref: ModelRef) -> bool:
        folder = self.folder(ref)
        with self.lock:
            if not folder.exists():
                return False
            trash = folder.parent / f".old-{uuid.uuid4().hex}"
            os.rename(folder, trash)
        self._cache.pop((ref.project, ref.dataset, ref.model), None)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def list(self, project: str, dataset: str) -> list[str]:
        folder = self.root / _check(project) / _check(dataset)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir()
                      if not p.name.startswith(".") and (p / "resource.json").exists())

    def drop_dataset(self, project: str, dataset: str) -> None:
        folder = self.root / _check(project) / _check(dataset)
        if folder.exists():
            trash = folder.parent / f".old-{uuid.uuid4().hex}"
            os.rename(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)
        self._cache = {k: v for k, v in self._cache.items() if k[:2] != (project, dataset)}
