"""Computation-based metrics of the Gen AI evaluation service, one score per instance.

What each returns follows Google's reference for `evaluateInstances`
(https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/evaluation):
exact_match 1 or 0; bleu and rouge in [0, 1] (ROUGE as the F-measure of the requested
rouge_type, with use_stemmer and split_summaries as given); tool_call_valid 1 when the
prediction is a tool-call JSON ({"content": ..., "tool_calls": [{"name": ...,
"arguments": {...}}]}), tool_name_match 1 when the calls name the reference's functions,
tool_parameter_key_match / tool_parameter_kv_match the share of the reference's argument
names (and values) that the prediction's calls carry, in [0, 1]."""

from __future__ import annotations

import json
import re

from labkit.genai.errors import InvalidArgument

ROUGE_TYPE = re.compile(r"rouge(?:[1-9]|L|Lsum)")


def exact_match(prediction: str, reference: str) -> float:
    return 1.0 if prediction == reference else 0.0


def bleu(prediction: str, reference: str, use_effective_order: bool) -> float:
    from sacrebleu.metrics import BLEU

    scorer = BLEU(effective_order=use_effective_order)
    return scorer.sentence_score(prediction, [reference]).score / 100.0


def check_rouge_type(rouge_type: str) -> None:
    if not ROUGE_TYPE.fullmatch(rouge_type or ""):
        raise InvalidArgument(f"Invalid rouge_type {rouge_type!r}: use rouge1 ... rouge9, "
                              f"rougeL or rougeLsum.")


def rouge(prediction: str, reference: str, rouge_type: str, use_stemmer: bool,
          split_summaries: bool) -> float:
    from rouge_score import rouge_scorer

    check_rouge_type(rouge_type)
    scorer = rouge_scorer.RougeScorer([rouge_type], use_stemmer=use_stemmer,
                                      split_summaries=split_summaries)
    return float(scorer.score(reference, prediction)[rouge_type].fmeasure)


# ---- tool calls


def tool_calls(text: str) -> list[dict] | None:
    """The calls of a tool-call JSON, or None when the text is not one."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    calls = value.get("tool_calls") if isinstance(value, dict) else None
    if not isinstance(calls, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str)
            and isinstance(c.get("arguments", {}), dict) for c in calls):
        return None
    return calls


def tool_call_valid(prediction: str, reference: str) -> float:
    return 0.0 if tool_calls(prediction) is None else 1.0


def tool_name_match(prediction: str, reference: str) -> float:
    predicted, expected = tool_calls(prediction), tool_calls(reference)
    if predicted is None or expected is None:
        return 0.0
    return 1.0 if [c["name"] for c in predicted] == [c["name"] for c in expected] else 0.0


def tool_parameter_key_match(prediction: str, reference: str) -> float:
    return _argument_share(prediction, reference, lambda p, r, key: key in p)


def tool_parameter_kv_match(prediction: str, reference: str, strict: bool) -> float:
    def same(p, r, key):
        return key in p and (p[key] == r[key] if strict else _loose(p[key]) == _loose(r[key]))
    return _argument_share(prediction, reference, same)


def _argument_share(prediction: str, reference: str, matches) -> float:
    """Calls are paired in order; each pair scores the share of the reference's arguments
    that match, a missing or extra call scores 0, and the result is their mean."""
    predicted, expected = tool_calls(prediction), tool_calls(reference)
    if predicted is None or expected is None:
        return 0.0
    pairs = max(len(predicted), len(expected))
    if pairs == 0:
        return 1.0
    total = 0.0
    for p, r in zip(predicted, expected, strict=False):
        p_args, r_args = p.get("arguments", {}), r.get("arguments", {})
        if not r_args:
            total += 1.0 if not p_args else 0.0
            continue
        total += sum(1 for key in r_args if matches(p_args, r_args, key)) / len(r_args)
    return total / pairs


def _loose(value):
    """Values compared without use_strict_string_match: case and surrounding space of
    strings, and int/float spelling of numbers, do not matter."""
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return json.dumps(value, sort_keys=True)
