"""Text out of the files RAG Engine imports: plain text and Markdown as they are, HTML
without its markup (scripts and styles dropped, block elements on their own lines), PDF
through pypdf. Google's list of supported types:
https://cloud.google.com/vertex-ai/generative-ai/docs/rag-engine/supported-documents
(other types, such as DOCX and PPTX, need LAB_BACKEND=gcp here and are refused)."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

SUFFIXES = {".txt": "text", ".md": "text", ".markdown": "text", ".html": "html",
            ".htm": "html", ".pdf": "pdf"}
TYPES = {"text/plain": "text", "text/markdown": "text", "text/html": "html",
         "application/pdf": "pdf"}
NOT_LOCAL = {".docx", ".pptx", ".xlsx", ".json", ".jsonl", ".csv", ".doc", ".ppt",
             ".xls", ".rtf", ".epub"}


class UnsupportedFile(ValueError):
    pass


def kind_of(name: str, content_type: str | None) -> str:
    lower = name.lower()
    for suffix, kind in SUFFIXES.items():
        if lower.endswith(suffix):
            return kind
    suffix = "." + lower.rsplit(".", 1)[-1] if "." in lower.rsplit("/", 1)[-1] else ""
    if suffix not in NOT_LOCAL and content_type and \
            content_type.split(";")[0].strip() in TYPES:  # the name says nothing: its type
        return TYPES[content_type.split(";")[0].strip()]
    if suffix in NOT_LOCAL:
        raise UnsupportedFile(f"{name}: {suffix} files are parsed by RAG Engine on Google "
                              "Cloud only; run with LAB_BACKEND=gcp, or convert to PDF, "
                              "HTML, Markdown or text.")
    raise UnsupportedFile(f"{name}: unsupported file type {suffix or content_type!r}; "
                          "RAG Engine imports PDF, HTML, Markdown and text files.")


def text_of(data: bytes, kind: str) -> tuple[str, list[int]]:
    """The text and, for a PDF, the character offset where each page starts."""
    if kind == "pdf":
        return _pdf_text(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedFile(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return (_html_text(text) if kind == "html" else text), []


def _pdf_text(data: bytes) -> tuple[str, list[int]]:
    import pypdf
    from pypdf.errors import PdfReadError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnsupportedFile(f"not a readable PDF ({exc})") from exc
    starts, at = [], 0
    for page in pages:
        starts.append(at)
        at += len(page) + 1
    return "\n".join(pages), starts


BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd",
          "table", "section", "article", "header", "footer", "main", "nav", "ul", "ol",
          "title", "pre", "blockquote"}
SKIP = {"script", "style", "noscript", "template", "svg"}


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIP:
            self.skipping += 1
        elif tag in BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def _html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
