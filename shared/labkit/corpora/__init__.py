"""Document corpora shipped with the labs (shared/data/corpora/<name>/), for retrieval and
grounding: the documents, the evaluation questions, and an upload to a Cloud Storage
bucket (the local one after labkit.start(), or the real one with LAB_BACKEND=gcp).

`fernhill`: the help centre and staff handbook of Fernhill Cycles, a fictional company,
written for this project (CC BY 4.0, see its README.md): Markdown, plain text, HTML and
PDF documents, and questions.jsonl with answers and the passage holding each answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data" / "corpora"
CONTENT_TYPES = {".md": "text/markdown", ".txt": "text/plain", ".html": "text/html",
                 ".pdf": "application/pdf"}


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str
    document: str  # file name under docs/
    evidence: str  # a verbatim span of the document's text that holds the answer


def corpus_dir(name: str = "fernhill") -> Path:
    folder = DATA / name
    if not folder.is_dir() or "/" in name or name.startswith("."):
        known = sorted(p.name for p in DATA.iterdir() if p.is_dir())
        raise ValueError(f"No corpus named {name!r}; shipped: {', '.join(known)}")
    return folder


def documents(name: str = "fernhill") -> list[Path]:
    return sorted(p for p in (corpus_dir(name) / "docs").iterdir()
                  if p.suffix in CONTENT_TYPES)


def questions(name: str = "fernhill") -> list[Question]:
    lines = (corpus_dir(name) / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [Question(**json.loads(line)) for line in lines if line.strip()]


def upload(bucket: str, prefix: str = "fernhill/", name: str = "fernhill",
           client=None) -> list[str]:
    """Uploads the corpus's documents to gs://BUCKET/PREFIX<file> with their content types
    and returns the gs:// URIs. `client`: a google.cloud.storage.Client (default: a new one,
    which labkit.start() has pointed at the local Cloud Storage)."""
    if client is None:
        from google.cloud import storage

        client = storage.Client()
    target = client.bucket(bucket)
    uris = []
    for path in documents(name):
        blob = target.blob(prefix + path.name)
        blob.upload_from_filename(str(path), content_type=CONTENT_TYPES[path.suffix])
        uris.append(f"gs://{bucket}/{prefix}{path.name}")
    return uris
