"""The generative engine: plain values in (turns, system text, config, tools), plain
values out (candidates, token counts). The model loads once per services process, on first
use, behind a lock; requests then take turns on it (one forward pass at a time)."""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass, field

import numpy as np

from labkit.genai import constrained, safety
from labkit.genai.errors import InvalidArgument, NotFound, NotLocal
from labkit.genai.generation import Budget, Decoder

LOCAL_VERSION = "gemma-3-270m-q4_k_m (local)"
EMBEDDING_VERSION = "all-MiniLM-L6-v2 (local)"
# The Gemini ids learners use, all answered by the local Gemma.
GENERATIVE = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash",
              "gemini-2.0-flash-001", "gemini-2.0-flash-lite", "gemini-2.0-flash-lite-001",
              "gemma-3-270m")
EMBEDDING = ("text-embedding-005", "text-embedding-004", "gemini-embedding-001",
             "text-multilingual-embedding-002")
INPUT_TOKEN_LIMIT = 8192 - 512  # what fits our cache with room for an answer
OUTPUT_TOKEN_LIMIT = 512
CALL_THRESHOLD = 0.3  # cosine similarity of the question to a function's description
TRANSCRIPT_STOPS = ("\nQuestion", "\nAnswer:")  # the model starting the next turn
DEFAULT_MAX_OUTPUT = 128  # Gemini's is far larger; the local model writes ~10 tokens/s


@dataclass
class Turn:
    role: str  # user | model
    parts: list[dict]  # Vertex Part dicts: text, functionCall, functionResponse


@dataclass
class Config:
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 64
    seed: int | None = None
    max_output_tokens: int = DEFAULT_MAX_OUTPUT
    stop_sequences: list[str] = field(default_factory=list)
    candidate_count: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    response_mime_type: str = "text/plain"
    response_schema: dict | None = None
    safety_settings: dict = field(default_factory=dict)  # category -> safety.Setting


def model_kind(model: str) -> str:
    if model in GENERATIVE:
        return "generative"
    if model in EMBEDDING:
        return "embedding"
    raise NotFound(f"Publisher Model `publishers/google/models/{model}` was not found or your "
                   f"project does not have access to it. The local Vertex AI answers "
                   f"{', '.join(GENERATIVE + EMBEDDING)}.")


class Engine:
    def __init__(self):
        self._load_lock = threading.Lock()
        self._model = None
        self._embedder = None
        self.safety = safety.Classifier(
            lambda texts: [v["values"] for v in self.embed(texts, None, True)])

    # ---- loading (once, on first use)

    @property
    def model(self):
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    from labkit.genai.gemma import Gemma3
                    from labkit.genai.tokenizer import GemmaTokenizer

                    model = Gemma3()
                    self.tokenizer = GemmaTokenizer(model.vocab)
                    self.vocab = constrained.Vocabulary(self.tokenizer)
                    self._model = model
        return self._model

    @property
    def embedder(self):
        if self._embedder is None:
            with self._load_lock:
                if self._embedder is None:
                    from labkit.genai.embeddings import MiniLM

                    self._embedder = MiniLM()
        return self._embedder

    # ---- prompts

    def prompt_ids(self, turns: list[Turn], system: str = "", tools: list[dict] | None = None,
                   json_hint: dict | None = None) -> list[int]:
        """The conversation as a plain question-and-answer transcript: the local Gemma is a
        pre-trained (not instruction-tuned) checkpoint, and it continues such a transcript
        far better than Gemma's chat-turn format, which it was never trained to follow."""
        self.model  # noqa: B018 - loads the tokenizer
        preamble = system
        if tools:
            preamble += ("\n\n" if preamble else "") + (
                "You can call these functions. To call one, answer with a JSON object "
                "{\"name\": ..., \"args\": {...}}.\n" + json.dumps(tools))
        if json_hint is not None:
            preamble += ("\n\n" if preamble else "") + "Answer with JSON of this schema: " + \
                json.dumps(json_hint)
        lines = [preamble, ""] if preamble else []
        for turn in turns:
            lines.append(("Answer: " if turn.role == "model" else "Question: ")
                         + _turn_text(turn))
        return [self.tokenizer.BOS] + self.tokenizer.encode("\n".join(lines) + "\nAnswer:")

    def count(self, turns: list[Turn], system: str = "", tools=None) -> int:
        return len(self.prompt_ids(turns, system, tools)) if turns else 0

    def turn_tokens(self, turns: list[Turn]) -> list[tuple[str, list[int]]]:
        self.model  # noqa: B018
        return [(t.role, self.tokenizer.encode(_turn_text(t))) for t in turns]

    # ---- generation

    def generate(self, turns: list[Turn], config: Config, system: str = "",
                 tools: list[dict] | None = None, tool_mode: str = "AUTO",
                 allowed_functions: list[str] | None = None,
                 on_text=None) -> dict:
        """Returns {candidates: [{parts, finish_reason, tokens, safety_ratings}],
        prompt_tokens}, or no candidates and prompt_feedback when the safety settings
        block the prompt."""
        if not turns:
            raise InvalidArgument("Unable to submit request because it has an empty contents "
                                  "field. Add a contents field and try again.")
        model = self.model
        ids = self.prompt_ids(turns, system, tools,
                              config.response_schema if config.response_mime_type ==
                              "application/json" and config.response_schema else None)
        if len(ids) > INPUT_TOKEN_LIMIT:
            raise InvalidArgument(f"The input token count ({len(ids)}) exceeds the maximum "
                                  f"number of tokens allowed ({INPUT_TOKEN_LIMIT}).")
        feedback = safety.screen_prompt(self.safety, _turn_text(turns[-1]),
                                        config.safety_settings)
        if feedback:
            return {"candidates": [], "prompt_tokens": len(ids), "prompt_feedback": feedback}
        candidates = []
        with model.lock, one_blas_thread():
            for index in range(config.candidate_count):
                seed = None if config.seed is None else config.seed + index
                sampling = dataclasses.replace(config, seed=seed)
                # room for the answer and for what a schema forces (keys, braces)
                forced = len(json.dumps(config.response_schema or {})) + len(
                    json.dumps(tools or []))
                decoder = Decoder(model, self.tokenizer, sampling,
                                  len(ids) + config.max_output_tokens + forced + 64)
                if index == 0:
                    decoder.feed(ids)
                    prompt = decoder.snapshot()
                else:  # the prompt's keys and values are the same for every candidate
                    decoder.restore(prompt)
                budget = Budget(config.max_output_tokens)
                call = self._function_call(decoder, turns, tools, tool_mode, allowed_functions,
                                           budget)
                if call is not None:
                    parts, finish = [{"functionCall": call}], "STOP"
                elif config.response_mime_type == "application/json":
                    parts, finish = self._json(decoder, config, budget)
                elif config.response_mime_type == "text/x.enum":
                    options = config.response_schema["enum"]
                    pick = options[decoder.choose(options)]
                    decoder.feed(self.tokenizer.encode(pick), generated=True)
                    parts, finish = [{"text": pick}], "STOP"
                else:
                    parts, finish = self._text(decoder, config, budget,
                                               on_text if index == 0 else None)
                candidates.append({"parts": parts, "finish_reason": finish,
                                   "tokens": len(decoder.generated), "index": index})
        safety.screen_answers(self.safety, candidates, config.safety_settings)
        return {"candidates": candidates, "prompt_tokens": len(ids)}

    def _text(self, decoder: Decoder, config: Config, budget: Budget, on_text):
        """Free text until a stop token, a stop sequence, the model starting the next
        transcript turn, or the budget. on_text(piece) gets the answer as it grows, each
        piece as soon as it cannot turn out to be the start of a stop sequence."""
        tok = self.tokenizer
        stops = {tok.EOS, tok.END_OF_TURN, tok.START_OF_TURN}
        sequences = [s for s in config.stop_sequences if s]
        out: list[int] = []
        text, sent = "", 0
        finish = "MAX_TOKENS"
        while budget.left > 0:
            token = decoder.next_token()
            if token in stops:
                finish = "STOP"
                break
            decoder.feed([token], generated=True)
            budget.used += 1
            out.append(token)
            text = tok.decode(out).lstrip()
            cut = _stop_at(text, sequences)
            if cut is not None:
                text, finish = text[:cut], "STOP"
                break
            if on_text:
                safe = len(text) - _pending(text, sequences)
                if text[:safe].endswith("\ufffd"):  # half a UTF-8 character so far
                    safe -= 1
                safe = len(text[:safe].rstrip())  # a trailing space may yet be trimmed
                if safe > sent:
                    on_text(text[sent:safe])
                    sent = safe
        text = text.rstrip()  # never sent: the stream holds trailing space back
        if on_text and len(text) > sent:
            on_text(text[sent:])
        return [{"text": text}], finish

    def _json(self, decoder: Decoder, config: Config, budget: Budget):
        schema = config.response_schema
        if schema is None:  # JSON mode without a schema: any JSON object of strings
            schema = {"type": "OBJECT", "properties": {"answer": {"type": "STRING"}}}
        value = constrained.generate_json(decoder, schema, self.vocab, budget)
        return [{"text": json.dumps(value)}], "MAX_TOKENS" if budget.hit else "STOP"

    def _function_call(self, decoder: Decoder, turns, tools, mode, allowed, budget):
        if not tools or mode == "NONE":
            return None
        declarations = {d["name"]: d for d in tools}
        names = [n for n in declarations if not allowed or n in allowed]
        if mode != "ANY" and any("functionResponse" in p for p in turns[-1].parts):
            return None  # AUTO after a function's result: the model answers in text
        # Which function (and, in AUTO, whether to call one at all): a 270M pre-trained
        # model cannot make that decision reliably, so the sentence-embedding model does,
        # by how close the user's last message is to each declaration's name and
        # description; the language model then writes the arguments.
        question = _turn_text(turns[-1])
        fit = self._relevance(question, [declarations[n] for n in names])
        best = int(np.argmax(fit))
        if mode != "ANY" and fit[best] < CALL_THRESHOLD:
            return None
        pick = names[best]
        decoder.feed(self.tokenizer.encode(' {"name": ' + json.dumps(pick) + ', "args": '))
        schema = declarations[pick].get("parameters")
        args = {}
        if schema and schema.get("properties"):
            args = constrained.generate_json(decoder, schema, self.vocab, budget)
        return {"name": pick, "args": args}

    def _relevance(self, question: str, declarations: list[dict]) -> np.ndarray:
        texts = [question] + [f"{d['name'].replace('_', ' ')}: {d.get('description', '')}"
                              for d in declarations]
        vectors = np.array([v["values"] for v in self.embed(texts, None, True)])
        return vectors[1:] @ vectors[0]

    # ---- embeddings

    def embed(self, texts: list[str], dimensionality: int | None, auto_truncate: bool) -> list:
        from labkit.genai.embeddings import DIMENSION, MAX_TOKENS

        if dimensionality is not None and not 1 <= dimensionality <= DIMENSION:
            raise InvalidArgument(f"outputDimensionality must be between 1 and {DIMENSION} "
                                  f"for the local embedding model (all-MiniLM-L6-v2, "
                                  f"{DIMENSION} dimensions); got {dimensionality}.")
        embedder = self.embedder
        out = []
        with embedder.lock, one_blas_thread():
            for text in texts:
                ids = embedder.tokens(text)
                truncated = len(ids) > MAX_TOKENS
                if truncated and not auto_truncate:
                    raise InvalidArgument(f"Text of {len(ids)} tokens is longer than the "
                                          f"model's limit of {MAX_TOKENS} tokens and "
                                          f"autoTruncate is false.")
                if truncated:
                    ids = ids[:MAX_TOKENS - 1] + ids[-1:]
                vector = embedder.embed(ids)
                if dimensionality is not None and dimensionality < DIMENSION:
                    vector = vector[:dimensionality]
                    vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
                out.append({"values": [float(v) for v in vector],
                            "token_count": len(ids), "truncated": truncated})
        return out


def one_blas_thread():
    """Decoding is matrix-vector work bound by memory traffic: on two shared cores a second
    BLAS thread only contends with the first (measured: 0.6 ms vs 11 ms for a 640 x 2048
    product). threadpoolctl's limit is process-wide while it is held."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _turn_text(turn: Turn) -> str:
    pieces = []
    for part in turn.parts:
        if "text" in part:
            pieces.append(part["text"])
        elif "functionCall" in part:
            pieces.append(json.dumps({"name": part["functionCall"].get("name"),
                                      "args": part["functionCall"].get("args", {})}))
        elif "functionResponse" in part:
            r = part["functionResponse"]
            pieces.append(f"Result of {r.get('name')}: {json.dumps(r.get('response'))}")
        elif "thought" in part or "thoughtSignature" in part:
            continue
        else:
            kind = next(iter(part), "part")
            raise NotLocal(f"A {kind} part (images, files, audio, video)")
    return "\n".join(pieces)


def _stop_at(text: str, sequences: list[str]) -> int | None:
    """Where the answer ends: at the first stop sequence, or where the model starts the
    next transcript turn. The answer follows "Answer:" on the prompt's last line, so a
    turn marker counts at its very start too (an answer that opens with "Question:")."""
    hits = [text.find(s) for s in sequences if s in text]
    turn = "\n" + text
    hits += [max(0, turn.find(s) - 1) for s in TRANSCRIPT_STOPS if s in turn]
    return min(hits) if hits else None


def _pending(text: str, sequences: list[str]) -> int:
    """How many characters at the end of text could still grow into a stop sequence or a
    turn marker (held back from a stream until they cannot)."""
    turn = "\n" + text
    for k in range(min(len(turn), max(map(len, [*sequences, *TRANSCRIPT_STOPS]))), 0, -1):
        if any(s.startswith(text[-k:]) for s in sequences if k <= len(text)) or \
                any(s.startswith(turn[-k:]) for s in TRANSCRIPT_STOPS):
            return min(k, len(text))
    return 0
