"""generateContent with a retrieval tool over a RAG corpus (Vertex AI's
Tool(retrieval=Retrieval(vertex_rag_store=...)) from the Vertex SDK and google-genai):
the last user turn is the query, the retrieved chunks go into the prompt ahead of the
conversation, and each candidate carries groundingMetadata as Vertex AI returns it
(https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/GroundingMetadata):
retrievalQueries, groundingChunks (retrievedContext: uri, title, text, ragChunk) and
groundingSupports: the answer's sentences (byte offsets in the part's UTF-8 text) with the
chunks that support them and how well (see Grounded._supports)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from labkit.genai.errors import InvalidArgument, NotLocal
from labkit.genai.rag.corpora import Context, RagEngine

SUPPORT_SCORE = 0.65  # a sentence's support by a chunk: see Grounded._supports
MAX_SUPPORTS = 3  # chunks named per sentence
RETRIEVAL_KEYS = {"vertexRagStore", "disableAttribution", "vertexAiSearch", "externalApi"}
PREAMBLE = ("Answer the question using only the passages below. If they do not hold the "
            "answer, say that you do not know.")


@dataclass
class Grounded:
    rag: RagEngine
    question: str
    contexts: list[Context]
    other_tools: list

    @classmethod
    def of(cls, rag: RagEngine | None, body: dict) -> Grounded | None:
        """None when the request has no retrieval tool (or no RAG engine is here)."""
        tools = body.get("tools") if isinstance(body, dict) else None
        if rag is None or not isinstance(tools, list):
            return None
        retrieval = [t for t in tools if isinstance(t, dict) and "retrieval" in t]
        if not retrieval:
            return None
        if len(retrieval) > 1 or len(retrieval[0]) > 1:
            raise InvalidArgument("Only one retrieval tool is allowed, on its own Tool.")
        others = [t for t in tools if t not in retrieval]
        if any(t.get("functionDeclarations") for t in others if isinstance(t, dict)):
            raise NotLocal("Combining a retrieval tool with function declarations")
        spec = retrieval[0]["retrieval"]
        if not isinstance(spec, dict):
            raise InvalidArgument("tools[].retrieval must be an object.")
        unknown = set(spec) - RETRIEVAL_KEYS
        if unknown:
            raise InvalidArgument(f"Invalid JSON payload received. Unknown name "
                                  f"\"{sorted(unknown)[0]}\" at 'tools[0].retrieval': "
                                  f"Cannot find field.")
        if spec.get("vertexAiSearch"):
            raise NotLocal("Grounding with Vertex AI Search (retrieval.vertex_ai_search)")
        if spec.get("externalApi"):
            raise NotLocal("Grounding with an external API (retrieval.external_api)")
        if spec.get("disableAttribution"):
            raise NotLocal("retrieval.disable_attribution (deprecated)")
        if not spec.get("vertexRagStore"):
            raise InvalidArgument("tools[].retrieval needs a source: vertex_rag_store.")
        question = _last_user_text(body.get("contents"))
        contexts = rag.retrieve(spec["vertexRagStore"], question)
        return cls(rag, question, contexts, others)

    def preamble(self, system: str) -> str:
        passages = "\n\n".join(f"Passage {i} ({c.display_name}):\n{c.text.strip()}"
                               for i, c in enumerate(self.contexts, 1))
        text = PREAMBLE + "\n\n" + (passages or "(no passages were found)")
        return text + ("\n\n" + system if system else "")

    def annotate(self, response: dict) -> None:
        """Adds groundingMetadata to each candidate of a generateContent response."""
        chunks = [{"retrievedContext": _retrieved(c)} for c in self.contexts]
        for candidate in response.get("candidates", []):
            metadata = {"retrievalQueries": [self.question]}
            if chunks:
                metadata["groundingChunks"] = chunks
                text = "".join(p.get("text", "") for p in
                               candidate.get("content", {}).get("parts", []))
                supports = self._supports(text)
                if supports:
                    metadata["groundingSupports"] = supports
            candidate["groundingMetadata"] = metadata

    def _supports(self, text: str) -> list[dict]:
        """A sentence of the answer is supported by a chunk when, on average, the chunk's
        closest sentence is near it in embedding space (cosine) and the chunk holds its
        words (the share of the sentence's content words found in the chunk). A local
        stand-in for Gemini's attribution: MiniLM alone tells a paraphrase from a
        different fact with the same shape (EUR 89 per year, EUR 300 per year) poorly."""
        sentences = _sentences(text)
        if not sentences:
            return []
        embedded = self.rag.embed_texts([text[a:b] for a, b in sentences])
        chunk_sentences = [[c.text[a:b] for a, b in _sentences(c.text)] or [c.text]
                           for c in self.contexts]
        chunk_words = [_words(c.text) for c in self.contexts]
        cache: dict[str, np.ndarray] = {}
        out = []
        for (start, end), vector in zip(sentences, embedded, strict=True):
            words = _words(text[start:end])
            scores = []
            for group, held in zip(chunk_sentences, chunk_words, strict=True):
                # embedding every sentence of every chunk is slow on two cores: only the
                # few sharing most words with this one can be its closest
                near = sorted(group, key=lambda t: -len(words & _words(t)))[:3]
                near = [t for t in near if words & _words(t)]
                missing = [t for t in near if t not in cache]
                if missing:
                    cache.update(zip(missing, self.rag.embed_texts(missing), strict=True))
                cosine = max((float(cache[t] @ vector) for t in near), default=0.0)
                scores.append((cosine + len(words & held) / max(len(words), 1)) / 2)
            scores = np.array(scores)
            best = [int(i) for i in np.argsort(-scores)[:MAX_SUPPORTS]
                    if scores[i] >= SUPPORT_SCORE]
            if not best:
                continue
            segment = {"endIndex": len(text[:end].encode()), "text": text[start:end]}
            if start:
                segment["startIndex"] = len(text[:start].encode())
            out.append({"segment": segment, "groundingChunkIndices": best,
                        "confidenceScores": [round(float(scores[i]), 6) for i in best]})
        return out


def _sentences(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"[^\s.!?][^.!?\n]*[.!?]*", text)
            if len(m.group().split()) >= 2]


STOPWORDS = set("a an the and or of to in on at for by with is are was be it its this that "
                "as from per you your we our can do does".split())


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+(?:[.,][0-9]+)?", text.lower())
            if w not in STOPWORDS}


def _retrieved(c: Context) -> dict:
    out = {"uri": c.source_uri, "title": c.display_name, "text": c.text,
           "ragChunk": {"text": c.text}}
    if c.first_page is not None:
        out["ragChunk"]["pageSpan"] = {"firstPage": c.first_page, "lastPage": c.last_page}
    return out


def _last_user_text(contents) -> str:
    if not isinstance(contents, list):
        raise InvalidArgument("contents must be a list of Content.")
    for content in reversed(contents):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            parts = content.get("parts") or []
            text = " ".join(p.get("text", "") for p in parts if isinstance(p, dict)
                            and isinstance(p.get("text"), str))
            if text.strip():
                return text
    raise InvalidArgument("A retrieval tool needs a user turn with text to search for.")
