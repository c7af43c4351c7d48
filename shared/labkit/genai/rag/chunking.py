"""Fixed-length chunking as RAG Engine's fixedLengthChunking does it: windows of
chunk_size tokens, each starting chunk_size - chunk_overlap tokens after the last, the
chunk's text cut from the document at its tokens' character offsets (so it is verbatim).
Tokens are the embedding model's (all-MiniLM-L6-v2's WordPiece); Google counts its own
model's tokens, so chunk counts differ somewhat from Google's for the same settings.
Defaults (1,024 and 200 tokens):
https://cloud.google.com/vertex-ai/generative-ai/docs/fine-tune-rag-transformations"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SIZE = 1024
DEFAULT_OVERLAP = 200


class ChunkingError(ValueError):
    pass


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int  # character offsets in the document's text
    end: int
    tokens: int


def check(size, overlap) -> tuple[int, int]:
    for name, value in (("chunk_size", size), ("chunk_overlap", overlap)):
        if isinstance(value, bool) or not isinstance(value, int | str) or \
                not str(value).lstrip("-").isdigit():
            raise ChunkingError(f"Invalid value for {name}: {value!r}")
    size, overlap = int(size), int(overlap)
    if size <= 0:
        raise ChunkingError(f"chunk_size must be positive, got {size}.")
    if overlap < 0:
        raise ChunkingError(f"chunk_overlap must not be negative, got {overlap}.")
    if overlap >= size:
        raise ChunkingError(f"chunk_overlap ({overlap}) must be smaller than chunk_size "
                            f"({size}).")
    return size, overlap


def chunk(text: str, offsets: list[tuple[int, int]], size: int, overlap: int) -> list[Chunk]:
    """`offsets`: each token's (start, end) in `text`, special tokens left out."""
    chunks = []
    step = size - overlap
    start = 0
    while start < len(offsets):
        window = offsets[start:start + size]
        begin, end = window[0][0], window[-1][1]
        chunks.append(Chunk(text[begin:end], begin, end, len(window)))
        if start + size >= len(offsets):
            break
        start += step
    return chunks
