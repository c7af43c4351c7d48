"""Supervised tuning datasets: JSONL in Cloud Storage, validated as Vertex AI validates them.

Formats (docs.cloud.google.com/vertex-ai/generative-ai/docs/models/gemini-supervised-tuning-prepare
and, for the older one, .../gemini-supervised-tuning-about):
- `contents`: {"systemInstruction": {"parts": [{"text"}]}, "contents": [{"role": "user" |
  "model", "parts": [{"text": ...}]}, ...]}, the conversation ending with a model turn;
- `messages`: {"messages": [{"role": "system" | "user" | "model", "content": "..."}]}, the
  system message only first.
A training dataset needs at least 16 examples (the "about" page's minimum); a validation
dataset holds at most 5,000 (the Gemini 2.5 limits table at .../models/gemini-tuning).
Parts other than text (fileData, inlineData: images, audio, documents) are Vertex's; the
local model reads text only, so they are refused by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from labkit.genai.errors import InvalidArgument, NotLocal

MIN_TRAINING_EXAMPLES = 16
MAX_VALIDATION_EXAMPLES = 5000
SHOWN_EXAMPLES = 3  # examples echoed in tuningDataStats.userDatasetExamples


@dataclass
class Example:
    system: str
    turns: list[tuple[str, str]] = field(default_factory=list)  # (user | model, text)

    def as_contents(self) -> list[dict]:
        return [{"role": role, "parts": [{"text": text}]} for role, text in self.turns]


def parse(uri: str, data: bytes, training: bool = True) -> list[Example]:
    """The examples of one JSONL file; the first bad line is a 400 naming it."""
    what = "training" if training else "validation"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument(f"The {what} dataset {uri} is not UTF-8 text.") from None
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            examples.append(_example(record))
        except (ValueError, _Bad) as exc:
            reason = f"not valid JSON ({exc})" if isinstance(exc, ValueError) else str(exc)
            raise InvalidArgument(f"Invalid {what} dataset {uri}: line {number}: "
                                  f"{reason}") from None
    if training and len(examples) < MIN_TRAINING_EXAMPLES:
        raise InvalidArgument(f"The training dataset {uri} has {len(examples)} examples; a "
                              f"training dataset must include a minimum of "
                              f"{MIN_TRAINING_EXAMPLES} examples.")
    if not training and len(examples) > MAX_VALIDATION_EXAMPLES:
        raise InvalidArgument(f"The validation dataset {uri} has {len(examples)} examples; "
                              f"validation datasets support up to {MAX_VALIDATION_EXAMPLES}.")
    if not examples:
        raise InvalidArgument(f"The {what} dataset {uri} has no examples.")
    return examples


class _Bad(Exception):
    pass


def _example(record) -> Example:
    if not isinstance(record, dict):
        raise _Bad("each line must be a JSON object")
    if "messages" in record:
        return _messages(record)
    unknown = set(record) - {"contents", "systemInstruction", "system_instruction", "tools"}
    if unknown:
        raise _Bad(f"unknown field \"{sorted(unknown)[0]}\"")
    if record.get("tools"):
        raise NotLocal("Tuning with tools (function calling examples)")
    contents = record.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _Bad("the required field \"contents\" is missing or empty")
    system = record.get("systemInstruction", record.get("system_instruction"))
    example = Example(_text(system, "systemInstruction") if system else "")
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise _Bad(f"contents[{i}] must be a Content object")
        role = content.get("role")
        if role not in ("user", "model"):
            raise _Bad(f"contents[{i}].role must be \"user\" or \"model\", got {role!r}")
        example.turns.append((role, _text(content, f"contents[{i}]")))
    _check_order(example)
    return example


def _messages(record: dict) -> Example:
    messages = record["messages"]
    if set(record) != {"messages"}:
        raise _Bad("a \"messages\" example has only the messages field")
    if not isinstance(messages, list) or not messages:
        raise _Bad("\"messages\" must be a non-empty list")
    example = Example("")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise _Bad(f"messages[{i}] needs a role and a string content")
        role = message.get("role")
        if role == "system":
            if i != 0:
                raise _Bad("the system role can only occur at the first message")
            example.system = message["content"]
        elif role in ("user", "model"):
            example.turns.append((role, message["content"]))
        else:
            raise _Bad(f"messages[{i}].role must be system, user or model, got {role!r}")
    _check_order(example)
    return example


def _text(content, where: str) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        raise _Bad(f"{where}.parts must be a non-empty list of Part objects")
    texts = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict) or not part:
            raise _Bad(f"{where}.parts[{j}] must be a Part object")
        if "text" not in part:
            raise NotLocal(f"Tuning on {next(iter(part))} parts (images, audio, documents)")
        if not isinstance(part["text"], str):
            raise _Bad(f"{where}.parts[{j}].text must be a string")
        texts.append(part["text"])
    return "".join(texts)


def _check_order(example: Example) -> None:
    roles = [role for role, _ in example.turns]
    if not roles or roles[0] != "user":
        raise _Bad("the conversation must start with a user turn")
    if roles[-1] != "model":
        raise _Bad("the conversation must end with a model turn (the answer to learn)")
    if any(a == b for a, b in zip(roles, roles[1:], strict=False)):
        raise _Bad("user and model turns must alternate")
    if any(not text.strip() for role, text in example.turns if role == "model"):
        raise _Bad("a model turn has no text")


def statistics(examples: list[Example], sequences, truncated: list[int], epochs: int,
               batch_size: int) -> dict:
    """tuningDataStats.supervisedTuningDataStats, the fields Vertex documents, counted
    with the local model's tokenizer (sequences: labkit.genai.tuning.lora.Sequence)."""
    inputs = [sum(1 for t in s.targets if not t) for s in sequences]
    outputs = [sum(1 for t in s.targets if t) for s in sequences]
    chars = sum(len(e.system) + sum(len(t) for _, t in e.turns) for e in examples)
    steps_per_epoch = -(-len(examples) // batch_size)
    return {
        "tuningDatasetExampleCount": str(len(examples)),
        "totalTuningCharacterCount": str(chars),
        "totalBillableCharacterCount": str(chars * epochs),
        "totalBillableTokenCount": str(sum(inputs + outputs) * epochs),
        "tuningStepCount": str(steps_per_epoch * epochs),
        "userInputTokenDistribution": distribution(inputs, epochs),
        "userOutputTokenDistribution": distribution(outputs, epochs),
        "userMessagePerExampleDistribution": distribution(
            [sum(1 for r, _ in e.turns if r == "user") for e in examples], 1),
        "userDatasetExamples": [{"role": r, "parts": [{"text": t}]}
                                for e in examples[:SHOWN_EXAMPLES] for r, t in e.turns],
        "totalTruncatedExampleCount": str(len(truncated)),
        "truncatedExampleIndices": [str(i) for i in truncated],
        "droppedExampleReasons": [],
    }


def distribution(values: list[int], epochs: int) -> dict:
    import numpy as np

    array = np.asarray(values, dtype=float)
    counts, edges = np.histogram(array, bins=min(10, max(1, len(set(values)))))
    return {"sum": str(int(array.sum())), "billableSum": str(int(array.sum()) * epochs),
            "min": float(array.min()), "max": float(array.max()),
            "mean": float(array.mean()), "median": float(np.median(array)),
            "p5": float(np.percentile(array, 5)), "p95": float(np.percentile(array, 95)),
            "buckets": [{"count": float(n), "left": float(lo), "right": float(hi)}
                        for n, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True)]}
