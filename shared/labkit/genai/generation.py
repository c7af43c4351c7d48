"""Decoding: one sequence on the model's KV cache, sampled as GenerationConfig says
(temperature, top_k, top_p, seed, presence/frequency penalties), with token masks for
constrained output and scoring of alternatives (enums, function names) by log-probability."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from labkit.genai.gemma import Gemma3
from labkit.genai.tokenizer import GemmaTokenizer

if TYPE_CHECKING:
    from labkit.genai.engine import Config


@dataclass
class Budget:
    limit: int
    used: int = 0
    hit: bool = False

    @property
    def left(self) -> int:
        return self.limit - self.used


@dataclass
class Decoder:
    model: Gemma3
    tokenizer: GemmaTokenizer
    sampling: Config  # labkit.genai.engine.Config: temperature, top_p/k, seed, penalties
    capacity: int
    rng: np.random.Generator = field(init=False)
    generated: list[int] = field(default_factory=list)  # what the model answered
    logits: np.ndarray | None = None

    def __post_init__(self):
        self.cache = self.model.new_cache(self.capacity)
        self.rng = np.random.default_rng(self.sampling.seed)
        self.counts: dict[int, int] = {}

    def feed(self, ids: list[int], generated: bool = False) -> None:
        if ids:
            self.logits = self.model.forward(ids, self.cache)
            if generated:
                self.generated.extend(ids)
                for i in ids:
                    self.counts[i] = self.counts.get(i, 0) + 1

    def snapshot(self) -> tuple:
        """What feeding the prompt produced (its keys, values and last logits): restored
        into another candidate's decoder instead of running the prompt again."""
        n = self.cache.length
        return n, self.cache.k[:, :n].copy(), self.cache.v[:, :n].copy(), self.logits

    def restore(self, snapshot: tuple) -> None:
        n, k, v, logits = snapshot
        self.cache.k[:, :n], self.cache.v[:, :n] = k, v
        self.cache.length, self.logits = n, logits

    def next_token(self, allowed: np.ndarray | None = None) -> int:
        logits = self.logits.astype(np.float64)
        if self.counts and (self.sampling.presence_penalty or self.sampling.frequency_penalty):
            seen = np.fromiter(self.counts, dtype=np.int64)
            times = np.fromiter(self.counts.values(), dtype=np.float64)
            logits[seen] -= self.sampling.presence_penalty + self.sampling.frequency_penalty * times
        logits[self.tokenizer.never_sampled()] = -np.inf
        if allowed is not None:
            logits = np.where(allowed, logits, -np.inf)
        s = self.sampling
        if s.temperature == 0:
            return int(np.argmax(logits))
        k = max(1, min(s.top_k, int(np.isfinite(logits).sum())))
        top = np.argpartition(-logits, k - 1)[:k]
        top = top[np.argsort(-logits[top], kind="stable")]
        z = logits[top] / s.temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        keep = int(np.searchsorted(np.cumsum(p), s.top_p) + 1)
        top, p = top[:keep], p[:keep] / p[:keep].sum()
        return int(self.rng.choice(top, p=p))

    def log_probs(self) -> np.ndarray:
        z = self.logits.astype(np.float64)
        z -= z.max()
        return z - np.log(np.exp(z).sum())

    def score(self, ids: list[int]) -> float:
        """Log-probability of ids after the current state; the state is left unchanged."""
        start, logits = self.cache.length, self.logits
        total = 0.0
        for i in ids:
            total += float(self.log_probs()[i])
            self.logits = self.model.forward([i], self.cache)
        self.cache.length, self.logits = start, logits
        return total / max(1, len(ids)) ** 0.5  # mild length normalisation

    def choose(self, options: list[str], prefix: str = "") -> int:
        """Index of the option the model finds most likely (greedy) or samples."""
        if len(options) == 1:
            return 0
        scores = np.array([self.score(self.tokenizer.encode(prefix + o)) for o in options])
        if self.sampling.temperature == 0 or len(options) == 1:
            return int(np.argmax(scores))
        z = scores / self.sampling.temperature
        p = np.exp(z - z.max())
        return int(self.rng.choice(len(options), p=p / p.sum()))
