"""Model-based metrics: the local Gemma as the judge.

Vertex fills the request's metric prompt template with the instance's values, has Gemini
write a rating and its reasons, and parses them. The local judge is the 270M pre-trained
Gemma, far weaker than Gemini; instead of free text it is asked for the rating after the
filled template and each rating the template's Rating Rubric allows is scored by its
log-probability. The most likely one is the score (greedy, so the same request always
gets the same score), and the explanation says how sure the judge was, honestly, rather
than a rationale a model this size cannot write."""

from __future__ import annotations

import json
import re

import numpy as np

from labkit.genai.engine import INPUT_TOKEN_LIMIT, LOCAL_VERSION, Config, Engine, one_blas_thread
from labkit.genai.errors import InvalidArgument
from labkit.genai.generation import Decoder

# "5 (completely fluent): ...", "1 : (Safe) ...", "`A`: Response A is better ...", "4: ..."
RUBRIC_LINE = re.compile(r"^\s*[`'\"]?(-?\d+(?:\.\d+)?|[A-Z][A-Z_]*)[`'\"]?\s*(?::|\()", re.M)
# inside a "Rating Rubric" section any word leads a rating ("good: ...")
SECTION_LINE = re.compile(r"^\s*[`'\"]?(-?\d+(?:\.\d+)?|\w+)[`'\"]?\s*(?::|\()", re.M)
DEFAULT_SCALE = ["1", "2", "3", "4", "5"]
PAIRWISE = {"A": "BASELINE", "B": "CANDIDATE", "SAME": "TIE"}  # A is the baseline's answer
VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(template: str, instance: dict) -> str:
    """The SDK's PromptTemplate convention: {name} is the instance's value of name."""
    def value(match):
        name = match.group(1)
        if name not in instance:
            return match.group(0)
        v = instance[name]
        return v if isinstance(v, str) else json.dumps(v)
    return VARIABLE.sub(value, template)


def rubric(template: str) -> list[str]:
    """The ratings the template's Rating Rubric lists (the whole template when it has no
    such section), in the order written."""
    section, line = template, RUBRIC_LINE
    head = re.search(r"^#+\s*Rating Rubric\s*$", template, re.M | re.I)
    if head:
        rest = template[head.end():]
        end = re.search(r"^#+\s", rest, re.M)
        section, line = (rest[:end.start()] if end else rest), SECTION_LINE
    seen = []
    for option in line.findall(section):
        if option not in seen:
            seen.append(option)
    return seen


def instance_of(json_instance: str) -> dict:
    try:
        value = json.loads(json_instance or "{}")
    except ValueError:
        raise InvalidArgument("instance.json_instance is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidArgument("instance.json_instance must be a JSON object.")
    return value


class Judge:
    def __init__(self, engine: Engine):
        self.engine = engine

    def pointwise(self, template: str, instance: dict) -> dict:
        listed = rubric(template)
        options = [o for o in listed if _is_number(o)]
        if listed and not options:
            raise InvalidArgument(f"A pointwise metric's score is a number, and the rating "
                                  f"rubric lists {', '.join(listed)}: rate with numbers "
                                  f"(e.g. `1: ...`, `0: ...`).")
        note = "" if options else " The template lists no ratings; the judge used 1 to 5."
        options = options or DEFAULT_SCALE
        pick, probs = self._rate(fill(template, instance), "Rating:", options)
        return {"score": float(options[pick]),
                "explanation": _explain(options, probs, pick) + note}

    def pairwise(self, template: str, instance: dict) -> dict:
        options = [o for o in rubric(template) if o in PAIRWISE] or ["A", "SAME", "B"]
        pick, probs = self._rate(fill(template, instance), "pairwise_choice:", options)
        return {"pairwiseChoice": PAIRWISE[options[pick]],
                "explanation": _explain(options, probs, pick)}

    def _rate(self, prompt: str, cue: str, options: list[str]) -> tuple[int, np.ndarray]:
        engine = self.engine
        model = engine.model
        tok = engine.tokenizer
        ids = [tok.BOS] + tok.encode(prompt.strip() + "\n\n" + cue)
        if len(ids) > INPUT_TOKEN_LIMIT:
            raise InvalidArgument(f"The filled metric prompt template has {len(ids)} tokens, "
                                  f"more than the judge's limit of {INPUT_TOKEN_LIMIT}.")
        with model.lock, one_blas_thread():
            decoder = Decoder(model, tok, Config(temperature=0.0), len(ids) + 16)
            decoder.feed(ids)
            scores = np.array([decoder.score(tok.encode(" " + o)) for o in options])
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        return int(np.argmax(scores)), probs


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+(?:\.\d+)?", text))


def _explain(options: list[str], probs: np.ndarray, pick: int) -> str:
    spread = ", ".join(f"{o}: {p:.2f}" for o, p in zip(options, probs, strict=True))
    return (f"Judged locally by {LOCAL_VERSION}, a small model and a weak judge: of the "
            f"ratings the rubric allows ({spread}), {options[pick]} is the most likely.")
