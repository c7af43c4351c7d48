"""RAG Engine: import throughput (the shipped Fernhill corpus parsed, chunked at 512/64
tokens and embedded) through the Vertex SDK against the same parsing, chunking and
embedding done directly in this process; retrieval_query latency against embedding the
query and scoring every chunk with numpy in process; recall@5 and MRR on the corpus's
questions (smoke mode: 2 documents, 3 questions)."""

from __future__ import annotations

import re
import statistics
import time

SIZE, OVERLAP = 512, 64


def run(smoke: bool = False) -> list[dict]:
    import numpy as np
    import vertexai
    from google.cloud import storage
    from vertexai import rag

    import labkit
    from labkit import corpora
    from labkit.genai.engine import Engine
    from labkit.genai.rag import chunking, parsing
    from labkit.genai.rag.corpora import embed_text

    env = labkit.start()
    vertexai.init()
    documents = corpora.documents()
    questions = corpora.questions()
    if smoke:
        documents = [d for d in documents if d.name in ("fernhill-care.md", "warranty-terms.pdf")]
        questions = [q for q in questions if q.document in {d.name for d in documents}][:3]
    client = storage.Client()
    bucket = client.bucket(env.bucket)
    if not bucket.exists():
        bucket = client.create_bucket(env.bucket)
    prefix = "bench-rag/"
    uris = []
    for path in documents:
        bucket.blob(prefix + path.name).upload_from_filename(
            str(path), content_type=corpora.CONTENT_TYPES[path.suffix])
        uris.append(f"gs://{env.bucket}/{prefix}{path.name}")

    # direct: the same parsing, chunking and embedding, in this process
    engine = Engine()
    engine.embed(["warm up"], None, True)
    start = time.perf_counter()
    texts = []
    for path in documents:
        text, _ = parsing.text_of(path.read_bytes(), parsing.kind_of(path.name, None))
        offsets = engine.embedder.tokenizer.encode(text, add_special_tokens=False).offsets
        texts += [c.text for c in chunking.chunk(text, offsets, SIZE, OVERLAP)]
    matrix = np.array([embed_text(engine, t) for t in texts], np.float32)
    direct_s = time.perf_counter() - start

    corpus = rag.create_corpus(display_name="bench-rag")
    try:
        start = time.perf_counter()
        chunks = rag.ChunkingConfig(chunk_size=SIZE, chunk_overlap=OVERLAP)
        response = rag.import_files(corpus.name, uris, transformation_config=(
            rag.TransformationConfig(chunking_config=chunks)))
        service_s = time.perf_counter() - start
        assert response.imported_rag_files_count == len(documents), response
        rows = [{"name": f"import: chunks/s ({len(documents)} files, {len(texts)} chunks of "
                         f"{SIZE}/{OVERLAP} tokens), service", "value": len(texts) / service_s,
                 "unit": "chunks/s", "baseline": len(texts) / direct_s,
                 "target": "ratio >= 0.8x"}]

        config = rag.RagRetrievalConfig(top_k=5)
        service_ms, direct_ms, found, reciprocal = [], [], 0, 0.0
        for q in questions:
            start = time.perf_counter()
            contexts = list(rag.retrieval_query(
                text=q.question, rag_resources=[rag.RagResource(rag_corpus=corpus.name)],
                rag_retrieval_config=config).contexts.contexts)
            service_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            np.argsort(-(matrix @ embed_text(engine, q.question)))[:5]
            direct_ms.append((time.perf_counter() - start) * 1000)
            ranks = [i for i, c in enumerate(contexts) if c.source_uri.endswith(q.document)
                     and _norm(q.evidence) in _norm(c.text)]
            found += bool(ranks)
            reciprocal += 1 / (ranks[0] + 1) if ranks else 0.0
        rows.append({"name": f"retrieval_query p50 latency (top 5 of {len(texts)} chunks), "
                             f"service", "value": statistics.median(service_ms), "unit": "ms",
                     "baseline": statistics.median(direct_ms), "target": "ratio < 2x"})
        rows.append({"name": f"recall@5 ({len(questions)} questions)",
                     "value": found / len(questions), "unit": "fraction"})
        rows.append({"name": f"MRR@5 ({len(questions)} questions)",
                     "value": reciprocal / len(questions), "unit": "fraction"})
    finally:
        rag.delete_corpus(corpus.name)
        for uri in uris:
            bucket.blob(uri.split("/", 3)[-1]).delete()
    return rows


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[*|#]", " ", text).split()).lower()
