"""Local Gen AI: time to first token and tokens per second through google-genai and the
local service, against the same engine called directly in this process; where a decode
step's time goes (the tied logit product, the 18 layers, sampling); the first streamed
chunk against the time to first token; embeddings per second likewise (smoke mode:
4 tokens, 4 texts)."""

from __future__ import annotations

import time

PROMPT = "Write a short story about a lighthouse keeper."
TOKENS = 48
TEXTS = 32


def run(smoke: bool = False) -> list[dict]:
    from google import genai
    from google.genai import types

    import labkit
    from labkit.genai.engine import Config, Engine, Turn

    labkit.start()
    tokens, texts = (4, 4) if smoke else (TOKENS, TEXTS)
    client = genai.Client()
    engine = Engine()
    started = time.perf_counter()
    engine.model  # noqa: B018 - load outside the timings
    rows = [{"name": "local Gemma 3 270M: load (prepared weights)",
             "value": time.perf_counter() - started, "unit": "s"}]
    turn = [Turn("user", [{"text": PROMPT}])]

    def direct(n: int) -> float:
        start = time.perf_counter()
        result = engine.generate(turn, Config(temperature=0, max_output_tokens=n))
        assert result["candidates"][0]["tokens"] == n
        return time.perf_counter() - start

    config = types.GenerateContentConfig(temperature=0, max_output_tokens=tokens)
    one = types.GenerateContentConfig(temperature=0, max_output_tokens=1)

    def service(cfg) -> float:
        start = time.perf_counter()
        client.models.generate_content(model="gemini-2.5-flash", contents=PROMPT, config=cfg)
        return time.perf_counter() - start

    service(one)  # the service's own first load
    first_direct, first_service = direct(1), service(one)
    rows.append({"name": "time to first token (prompt + 1 token), service vs direct",
                 "value": first_service, "unit": "s", "baseline": first_direct,
                 "target": "ratio < 1.3x"})
    whole_direct, whole_service = direct(tokens), service(config)
    rate_direct = (tokens - 1) / max(whole_direct - first_direct, 1e-9)
    rate_service = (tokens - 1) / max(whole_service - first_service, 1e-9)
    rows.append({"name": f"decode tokens/s ({tokens} greedy tokens), service",
                 "value": rate_service, "unit": "tokens/s", "baseline": rate_direct,
                 "target": ">= 20 tokens/s"})
    rows += _decode_breakdown(engine, 2 if smoke else 12)
    stream_start = time.perf_counter()
    first_chunk = None
    for _chunk in client.models.generate_content_stream(model="gemini-2.5-flash",
                                                        contents=PROMPT, config=config):
        first_chunk = first_chunk or time.perf_counter() - stream_start
    rows.append({"name": "stream: first chunk arrives, vs time to first token (service)",
                 "value": first_chunk, "unit": "s", "baseline": first_service,
                 "target": "ratio < 1.3x"})

    sentences = [f"Sentence number {i} about machine learning on Google Cloud."
                 for i in range(texts)]
    start = time.perf_counter()
    engine.embed(sentences, None, True)
    direct_s = time.perf_counter() - start
    start = time.perf_counter()
    client.models.embed_content(model="text-embedding-005", contents=sentences)
    service_s = time.perf_counter() - start
    rows.append({"name": f"embeddings/s ({texts} sentences, all-MiniLM-L6-v2), service",
                 "value": texts / service_s, "unit": "texts/s", "baseline": texts / direct_s})
    return rows


def _decode_breakdown(engine, steps: int) -> list[dict]:
    """A decode step split in its parts, each the best of `steps` (the machine is shared):
    the tied 262,144 x 640 logit product, the rest of the forward pass (18 layers), and
    choosing the token (penalties, masks, top-k/top-p)."""
    import numpy as np

    from labkit.genai.engine import Config, Turn, one_blas_thread
    from labkit.genai.generation import Decoder

    model = engine.model
    decoder = Decoder(model, engine.tokenizer, Config(temperature=1.0, seed=0), 64 + steps)
    decoder.feed(engine.prompt_ids([Turn("user", [{"text": PROMPT}])]))
    hidden = np.random.default_rng(0).standard_normal((1, model.config.dim), np.float32)
    forward, logits, sample = [], [], []
    with one_blas_thread():
        for _ in range(steps):
            start = time.perf_counter()
            token = decoder.next_token()
            sample.append(time.perf_counter() - start)
            start = time.perf_counter()
            decoder.feed([token], generated=True)
            forward.append(time.perf_counter() - start)
            start = time.perf_counter()
            with model._blas.limit(limits=2):
                hidden @ model.embed.T
            logits.append(time.perf_counter() - start)
    step, head = min(forward), min(logits)
    return [{"name": "decode step: logit product (2 BLAS threads)", "value": head * 1e3,
             "unit": "ms", "baseline": step * 1e3},
            {"name": "decode step: the 18 layers and norms", "value": (step - head) * 1e3,
             "unit": "ms", "baseline": step * 1e3},
            {"name": "decode step: choosing the token (top-k/top-p)", "value": min(sample) * 1e3,
             "unit": "ms", "baseline": step * 1e3}]
