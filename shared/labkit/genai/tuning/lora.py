"""LoRA on the local Gemma: the Gemma 3 forward pass in TensorFlow with the base weights
frozen, low-rank adapters on the attention query and value projections of every layer, the
loss on the model turns' tokens only; and the adapters merged back into the NumPy decoder.

Why q and v: they are where the LoRA paper (Hu et al., 2021, section 7.1) found adapting
attention pays most per parameter, and Vertex's adapter size is the rank. The forward pass
is the same graph as labkit.genai.gemma (RMSNorms, grouped-query attention, rotary
positions, sliding window, GeGLU), checked against it in tests. Only the positions whose
next token is a target are projected to the 262,144-word vocabulary: that projection is
the largest product in the model, and the other positions have no loss.

Adapters are stored as .npz (arrays only, loaded with allow_pickle=False) beside their
SHA-256; nothing here unpickles.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ALPHA = 16.0  # LoRA's alpha: the update is scaled by ALPHA / rank
BASE_LEARNING_RATE = 2e-3  # Adam; Vertex's learning_rate_multiplier scales it
ADAPTED = ("q", "v")
MAX_SEQUENCE = 512  # tokens of one training example (longer ones are truncated, counted)


@dataclass
class Sequence:
    """One training example as tokens: `targets[i]` is true where token i is to be
    predicted (the model turns and the end of text after the last one)."""
    tokens: list[int]
    targets: list[bool]


def sequence(tokenizer, system: str, turns: list[tuple[str, str]]) -> Sequence:
    """The example as the serving engine's transcript (labkit.genai.engine.prompt_ids):
    "Question: ..." / "Answer: ..." lines after the system text, each answer a target."""
    tokens, targets = [tokenizer.BOS], [False]
    text = system + "\n\n" if system else ""
    last_model = max(i for i, (role, _) in enumerate(turns) if role == "model")
    for i, (role, content) in enumerate(turns):
        if role == "model":
            text += "Answer:"
            ids = tokenizer.encode(text)
            tokens += ids
            targets += [False] * len(ids)
            answer = tokenizer.encode(" " + content.strip())
            if i == last_model:
                answer = answer + [tokenizer.EOS]  # a tuned model ends its answer
            tokens += answer
            targets += [True] * len(answer)
            text = "\n"
        else:
            text += "Question: " + content + "\n"
    return Sequence(tokens, targets)


def truncated(seq: Sequence) -> Sequence:
    return Sequence(seq.tokens[:MAX_SEQUENCE], seq.targets[:MAX_SEQUENCE])


class LoraModel:
    """Gemma 3 in TensorFlow over a labkit.genai.gemma.Gemma3's arrays (copied once into
    TensorFlow constants, stacked by layer), with trainable adapters A (dim x r, random)
    and B (r x out, zero: the tuned model starts as the base model).

    The layers run as one tf.scan over the stacked weights, so tf.function traces one
    layer instead of eighteen (tracing the unrolled model and its gradient took 25-40 s
    on two busy cores, more than a short tuning job's steps)."""

    NAMES = ("attn_norm", "q_norm", "k_norm", "post_attn_norm", "ffn_norm", "post_ffn_norm",
             "q", "k", "v", "o", "gate_up", "down")

    def __init__(self, gemma, rank: int, seed: int = 0):
        import tensorflow as tf

        self.tf = tf
        c = self.config = gemma.config
        self.rank = rank
        self.scale = ALPHA / rank
        self.embed = tf.constant(np.asarray(gemma.embed))
        self.output_norm = tf.constant(np.asarray(gemma.output_norm))
        self.stacked = {n: tf.constant(np.stack([np.asarray(b[n]) for b in gemma.blocks]))
                        for n in self.NAMES}
        self.is_global = tf.constant([c.is_global(i) for i in range(c.layers)])
        rng = np.random.default_rng(seed)
        self.adapters = {}
        for name in ADAPTED:
            fan_in, fan_out = gemma.blocks[0][name].shape
            a = rng.normal(0, 1 / np.sqrt(fan_in), (c.layers, fan_in, rank))
            self.adapters[name] = (
                tf.Variable(a.astype(np.float32), name=f"{name}_a"),
                tf.Variable(np.zeros((c.layers, rank, fan_out), np.float32), name=f"{name}_b"))
        self.variables = [v for pair in self.adapters.values() for v in pair]
        half = c.head_dim // 2
        steps = np.arange(half, dtype=np.float64) / half
        self.inv_freq = {g: 1.0 / (c.rope_global if g else c.rope_local) ** steps
                         for g in (True, False)}

    # ---- the forward pass

    def _norm(self, x, w):
        tf = self.tf
        return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), -1, keepdims=True)
                                 + self.config.eps) * w

    @staticmethod
    def _rope(x, cos, sin, tf):
        half = x.shape[-1] // 2
        a, b = x[..., :half], x[..., half:]
        return tf.concat([a * cos - b * sin, b * cos + a * sin], -1)

    def hidden(self, tokens):
        """tokens (batch, time) int32 -> the final normed hidden states (batch, time, dim)."""
        tf, c = self.tf, self.config
        batch, time = tf.shape(tokens)[0], tf.shape(tokens)[1]
        x = tf.gather(self.embed, tokens) * np.float32(np.sqrt(c.dim))
        positions = tf.range(time)
        causal = positions[None, :] <= positions[:, None]
        window = causal & (positions[None, :] > positions[:, None] - c.window)
        trig = {}
        for g in (True, False):
            angles = tf.cast(positions, tf.float64)[:, None] * self.inv_freq[g][None, :]
            trig[g] = (tf.cast(tf.cos(angles), tf.float32)[:, None, :],
                       tf.cast(tf.sin(angles), tf.float32)[:, None, :])
        group = c.heads // c.kv_heads
        qscale = np.float32(c.head_dim ** -0.5)
        rope = self._rope

        def layer(x, w):
            is_global = w["is_global"]
            cos = tf.where(is_global, trig[True][0], trig[False][0])
            sin = tf.where(is_global, trig[True][1], trig[False][1])
            visible = tf.where(is_global, causal, window)
            h = self._norm(x, w["attn_norm"])
            q = h @ w["q"] + (h @ w["q_a"]) @ w["q_b"] * self.scale
            v = h @ w["v"] + (h @ w["v_a"]) @ w["v_b"] * self.scale
            q = tf.reshape(q, (batch, time, c.kv_heads, group, c.head_dim))
            k = tf.reshape(h @ w["k"], (batch, time, c.kv_heads, c.head_dim))
            v = tf.reshape(v, (batch, time, c.kv_heads, c.head_dim))
            q = rope(self._norm(q, w["q_norm"]), cos[:, :, None], sin[:, :, None], tf)
            k = rope(self._norm(k, w["k_norm"]), cos, sin, tf)
            scores = tf.einsum("btkgd,bskd->bkgts", q * qscale, k)
            weights = tf.nn.softmax(tf.where(visible, scores, np.float32(-1e30)), axis=-1)
            out = tf.einsum("bkgts,bskd->btkgd", weights, v)
            attn = tf.reshape(out, (batch, time, c.heads * c.head_dim)) @ w["o"]
            x = x + self._norm(attn, w["post_attn_norm"])
            gate_up = self._norm(x, w["ffn_norm"]) @ w["gate_up"]
            gate, up = gate_up[..., :c.hidden], gate_up[..., c.hidden:]
            ffn = (tf.nn.gelu(gate, approximate=True) * up) @ w["down"]
            return x + self._norm(ffn, w["post_ffn_norm"])

        weights = {**self.stacked, "is_global": self.is_global,
                   **{f"{n}_{part}": var for n, pair in self.adapters.items()
                      for part, var in zip("ab", pair, strict=True)}}
        x = tf.foldl(layer, weights, initializer=x)
        return self._norm(x, self.output_norm)

    def losses(self, tokens, targets):
        """Summed cross-entropy and the count of target tokens (and of those predicted
        right, greedily) for a padded batch; targets (batch, time) bool."""
        tf = self.tf
        hidden = self.hidden(tokens)
        # the state at position t predicts token t + 1
        where = tf.where(targets[:, 1:])  # (n, 2): batch, time - 1
        states = tf.gather_nd(hidden[:, :-1], where)
        labels = tf.gather_nd(tokens[:, 1:], where)
        logits = tf.matmul(states, self.embed, transpose_b=True)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        right = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                                               labels), tf.float32))
        return tf.reduce_sum(loss), tf.cast(tf.shape(labels)[0], tf.float32), right

    # ---- adapters out

    def arrays(self) -> dict[str, np.ndarray]:
        return {f"{name}.{part}": var.numpy() for name, pair in self.adapters.items()
                for part, var in zip("ab", pair, strict=True)}


def batch_arrays(seqs: list[Sequence]) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded token and target arrays (padding is never a target, and causal
    attention keeps real tokens from seeing it)."""
    width = max(len(s.tokens) for s in seqs)
    tokens = np.zeros((len(seqs), width), np.int32)
    targets = np.zeros((len(seqs), width), bool)
    for i, s in enumerate(seqs):
        tokens[i, :len(s.tokens)] = s.tokens
        targets[i, :len(s.targets)] = s.targets
    return tokens, targets


# ---- storage and merging


def save(folder: Path, arrays: dict[str, np.ndarray], meta: dict) -> str:
    """Writes adapters.npz and adapters.json (rank, alpha, base model, SHA-256 of the
    .npz); returns the digest."""
    from labkit.services.files import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "adapters.npz.partial"
    with open(partial, "wb") as out:
        np.savez(out, **arrays)
    digest = hashlib.sha256(partial.read_bytes()).hexdigest()
    partial.replace(folder / "adapters.npz")
    write_atomic(folder / "adapters.json", json.dumps({**meta, "sha256": digest}, indent=1))
    return digest


class AdapterError(RuntimeError):
    """Stored adapters are missing or not the file their checksum names."""


def load(folder: Path) -> tuple[dict[str, np.ndarray], dict]:
    try:
        meta = json.loads((folder / "adapters.json").read_text())
        data = (folder / "adapters.npz").read_bytes()
    except (OSError, ValueError) as exc:
        raise AdapterError(f"The tuned model's adapters in {folder.name} cannot be read: "
                           f"{exc}") from None
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise AdapterError(f"The tuned model's adapters in {folder.name} do not match their "
                           f"SHA-256; tune the model again.")
    import io

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}, meta


def merged(gemma, arrays: dict[str, np.ndarray], meta: dict):
    """A Gemma3 that shares the base weights except the adapted projections, which are
    W + (alpha / r) A B, merged once at load: serving then costs what the base costs."""
    import copy
    import threading

    scale = np.float32(meta["alpha"] / meta["rank"])
    tuned = copy.copy(gemma)
    tuned.blocks = []
    for i, block in enumerate(gemma.blocks):
        block = dict(block)
        for name in meta["adapted"]:
            a, b = arrays[f"{name}.a"][i], arrays[f"{name}.b"][i]
            block[name] = np.asarray(block[name]) + scale * (a @ b)
        tuned.blocks.append(block)
    tuned.lock = threading.Lock()
    return tuned
