"""Tuned models answering: the base Gemma with a job's LoRA adapters merged (W + BA, once
per model, kept for the next requests), behind the same engine the Gemini ids use."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from labkit.genai.engine import Engine
from labkit.genai.tuning import lora

KEPT = 4  # merged models kept in memory (each ~60 MB of merged projections)


class TunedEngine(Engine):
    """An Engine whose model is a merged copy of the base's, sharing its tokenizer and
    sentence embedder."""

    def __init__(self, base: Engine, model):
        super().__init__()
        self.base = base
        self._model = model
        self.tokenizer, self.vocab = base.tokenizer, base.vocab

    @property
    def embedder(self):
        return self.base.embedder


class TunedModels:
    def __init__(self, base: Engine):
        self.base = base
        self.lock = threading.Lock()
        self.engines: OrderedDict[tuple[Path, str], TunedEngine] = OrderedDict()

    def engine(self, folder: Path) -> TunedEngine:
        arrays, meta = lora.load(folder)  # checksum checked on every load
        key = (folder, meta["sha256"])
        with self.lock:
            if key in self.engines:
                self.engines.move_to_end(key)
                return self.engines[key]
            engine = TunedEngine(self.base, lora.merged(self.base.model, arrays, meta))
            self.engines[key] = engine
            while len(self.engines) > KEPT:
                self.engines.popitem(last=False)
            return engine
