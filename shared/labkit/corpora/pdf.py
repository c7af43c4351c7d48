"""A minimal PDF writer for the shipped document corpus: text pages in the standard
Helvetica fonts (no font embedding, WinAnsi encoding), so that PDF readers such as pypdf
extract the text exactly. Regenerate the corpus's PDFs with
`python -m labkit.corpora.pdf` after editing a file in its pdf_source/ folder.

The format follows ISO 32000-1 (PDF 1.7): a catalog, a page tree, one content stream per
page, a cross-reference table with 10-digit byte offsets and a trailer.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 56
WRAP = 92  # characters per line of 10-point Helvetica inside the margins
LEADING = 14
HEADING = re.compile(r"^\d+(\.\d+)?\.? [A-Z]|^[A-Z][a-z]+( [a-z]+){0,4}$")


def _escape(text: str) -> str:
    data = text.encode("cp1252")  # WinAnsiEncoding, near enough for these documents
    out = []
    for byte in data:
        char = chr(byte)
        if char in "()\\":
            out.append("\\" + char)
        elif byte < 32 or byte > 126:
            out.append(f"\\{byte:03o}")
        else:
            out.append(char)
    return "".join(out)


def layout(text: str) -> list[list[tuple[str, int, str]]]:
    """Pages of (font, size, line): the first line is the title, short capitalised lines
    and numbered headings are bold, paragraphs (blank-line separated) are re-wrapped."""
    blocks = [b.strip() for b in text.strip().split("\n\n") if b.strip()]
    lines: list[tuple[str, int, str]] = []
    for i, block in enumerate(blocks):
        joined = " ".join(block.split())
        if i == 0:
            lines += [("F2", 16, joined), ("F1", 10, "")]
        elif len(joined) < 60 and HEADING.match(joined):
            lines += [("F1", 10, ""), ("F2", 11, joined)]
        else:
            lines += [("F1", 10, line) for line in textwrap.wrap(joined, WRAP)]
            lines.append(("F1", 10, ""))
    per_page = (PAGE_HEIGHT - 2 * MARGIN) // LEADING
    return [lines[i:i + per_page] for i in range(0, len(lines), per_page)]


def _page_stream(lines: list[tuple[str, int, str]], number: int) -> bytes:
    ops = ["BT", f"{LEADING} TL", f"1 0 0 1 {MARGIN} {PAGE_HEIGHT - MARGIN} Tm"]
    for font, size, line in lines:
        ops += [f"/{font} {size} Tf", f"({_escape(line)}) Tj", "T*"]
    ops += ["ET", "BT", f"/F1 8 Tf 1 0 0 1 {PAGE_WIDTH // 2 - 10} {MARGIN // 2} Tm",
            f"(Page {number}) Tj", "ET"]
    return "\n".join(ops).encode("latin-1")


def write_pdf(text: str, path: Path, title: str = "") -> None:
    pages = layout(text)
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, filled in below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold "
        b"/Encoding /WinAnsiEncoding >>",
        f"<< /Title ({_escape(title)}) /Producer (labkit.corpora.pdf) >>".encode("latin-1"),
    ]
    kids = []
    for number, lines in enumerate(pages, 1):
        stream = _page_stream(lines, number)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream
                       + b"\nendstream")
        content = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
            f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> "
            f"/Contents {content} 0 R >>".encode())
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += (b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, xref))
    from labkit.services.files import write_atomic

    write_atomic(path, bytes(out), mode=0o644)


def main() -> None:
    from labkit.corpora import corpus_dir

    folder = corpus_dir()
    for source in sorted((folder / "pdf_source").glob("*.txt")):
        text = source.read_text(encoding="utf-8")
        target = folder / "docs" / (source.stem + ".pdf")
        write_pdf(text, target, title=text.strip().splitlines()[0])
        print(target.name, len(layout(text)), "pages")


if __name__ == "__main__":
    main()
