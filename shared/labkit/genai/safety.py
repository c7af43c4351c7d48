"""The local safety classifier behind `safety_settings`, and Vertex AI's blocking rules.

Each harm category has two linear models on the sentence embedding of the text
(all-MiniLM-L6-v2, genai/embeddings.py): a logistic regression whose output is the
probabilityScore, and a ridge regression of the labelled severity (0-3, scaled to 0-1)
that is the severityScore. They are fit on the hand-written labelled set
safety_data.tsv (every fifth line of each category held out) by
`python -m labkit.genai.safety fit`, which writes safety_weights.json (plain numbers, no
pickle) and prints precision and recall on the held-out lines; `... measure` prints them
again from the shipped weights. A small classifier on 384 numbers: it catches plain
requests and statements of each kind, not disguised ones.

Vertex's rules (https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/
configure-safety-filters and the REST reference of SafetySetting): a threshold blocks
content whose level in its category is at or above it (BLOCK_LOW_AND_ABOVE, ..._MEDIUM_...,
BLOCK_ONLY_HIGH; BLOCK_NONE and OFF never block); `method` PROBABILITY (the default when
unset) compares the probability level, SEVERITY the severity level; a category without a
setting is not filtered (the default threshold of Gemini 2.x models is OFF). A blocked
prompt gets promptFeedback.blockReason SAFETY and no candidates; a blocked answer has
finishReason SAFETY, no content, and `blocked: true` on the rating that blocked it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labkit.genai.errors import InvalidArgument, NotLocal

HERE = Path(__file__).parent
DATA = HERE / "safety_data.tsv"
WEIGHTS = HERE / "safety_weights.json"
CATEGORIES = ("HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_DANGEROUS_CONTENT",
              "HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_SEXUALLY_EXPLICIT")
# HarmCategory values Vertex knows that the local classifier does not rate
OTHER_CATEGORIES = ("HARM_CATEGORY_CIVIC_INTEGRITY", "HARM_CATEGORY_JAILBREAK",
                    "HARM_CATEGORY_IMAGE_HATE", "HARM_CATEGORY_IMAGE_DANGEROUS_CONTENT",
                    "HARM_CATEGORY_IMAGE_HARASSMENT", "HARM_CATEGORY_IMAGE_SEXUALLY_EXPLICIT")
LEVELS = ("NEGLIGIBLE", "LOW", "MEDIUM", "HIGH")
CUTS = (0.2, 0.5, 0.8)  # score -> level: below 0.2 NEGLIGIBLE, below 0.5 LOW, ...
THRESHOLDS = {"BLOCK_LOW_AND_ABOVE": 1, "BLOCK_MEDIUM_AND_ABOVE": 2, "BLOCK_ONLY_HIGH": 3,
              "BLOCK_NONE": None, "OFF": None}
METHODS = ("HARM_BLOCK_METHOD_UNSPECIFIED", "PROBABILITY", "SEVERITY")
HELD_OUT_EVERY = 5


@dataclass
class Setting:
    level: int | None  # the lowest level that blocks; None never blocks
    method: str  # PROBABILITY | SEVERITY


def parse_settings(raw) -> dict[str, Setting]:
    """safetySettings as Vertex validates them: known enum values, one per category."""
    raw = [] if raw is None else raw
    if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
        raise InvalidArgument("safety_settings must be a list of SafetySetting objects.")
    out: dict[str, Setting] = {}
    for i, s in enumerate(raw):
        unknown = sorted(set(s) - {"category", "threshold", "method"})
        if unknown:
            raise InvalidArgument(f"Invalid JSON payload received. Unknown name "
                                  f"\"{unknown[0]}\" at 'safety_settings[{i}]': Cannot find "
                                  f"field.")
        category, threshold = s.get("category"), s.get("threshold")
        method = s.get("method") or "HARM_BLOCK_METHOD_UNSPECIFIED"
        if category not in CATEGORIES + OTHER_CATEGORIES + ("HARM_CATEGORY_UNSPECIFIED",):
            raise InvalidArgument(_enum_error(i, "category", "HarmCategory", category))
        if threshold not in (*THRESHOLDS, "HARM_BLOCK_THRESHOLD_UNSPECIFIED"):
            raise InvalidArgument(_enum_error(i, "threshold", "SafetySetting.HarmBlockThreshold",
                                              threshold))
        if method not in METHODS:
            raise InvalidArgument(_enum_error(i, "method", "SafetySetting.HarmBlockMethod",
                                              method))
        if category == "HARM_CATEGORY_UNSPECIFIED":
            raise InvalidArgument(f"safety_settings[{i}].category must be a harm category, "
                                  f"not HARM_CATEGORY_UNSPECIFIED.")
        if threshold == "HARM_BLOCK_THRESHOLD_UNSPECIFIED":
            raise InvalidArgument(f"safety_settings[{i}].threshold is required.")
        if category in out:
            raise InvalidArgument(f"safety_settings has {category} more than once.")
        if category in OTHER_CATEGORIES:
            if THRESHOLDS[threshold] is None:
                continue  # not filtering is what the local service does anyway
            raise NotLocal(f"Safety filtering of {category} (the local classifier rates "
                           f"{', '.join(CATEGORIES)})")
        out[category] = Setting(THRESHOLDS[threshold],
                                "SEVERITY" if method == "SEVERITY" else "PROBABILITY")
    return out


def _enum_error(i: int, field: str, enum: str, value) -> str:
    return (f"Invalid value at 'safety_settings[{i}].{field}' "
            f"(type.googleapis.com/google.cloud.aiplatform.v1beta1.{enum}), "
            f"{json.dumps(value)}")


def level(score: float) -> int:
    return int(np.searchsorted(CUTS, score, side="right"))


class Classifier:
    """Rates text in the four categories; `embed(texts)` gives unit-length vectors."""

    def __init__(self, embed):
        self.embed = embed
        self._weights = None

    @property
    def weights(self) -> dict:
        if self._weights is None:
            raw = json.loads(WEIGHTS.read_text())
            self._weights = {c: {k: (np.array(m["coef"]), m["intercept"])
                                 for k, m in raw["categories"][c].items()}
                             for c in CATEGORIES}
        return self._weights

    def scores(self, text: str) -> dict[str, tuple[float, float]]:
        """category -> (probabilityScore, severityScore), both in [0, 1]."""
        vector = np.asarray(self.embed([text])[0])
        out = {}
        for category, models in self.weights.items():
            coef, bias = models["probability"]
            probability = 1.0 / (1.0 + np.exp(-(vector @ coef + bias)))
            coef, bias = models["severity"]
            severity = float(np.clip(vector @ coef + bias, 0.0, 1.0))
            out[category] = (float(probability), severity)
        return out

    def rate(self, text: str, settings: dict[str, Setting]) -> tuple[list[dict], bool]:
        """Vertex's safetyRatings for the text, and whether a setting blocks it."""
        ratings, blocked = [], False
        for category, (probability, severity) in self.scores(text).items():
            rating = {"category": category, "probability": LEVELS[level(probability)],
                      "probabilityScore": round(probability, 6),
                      "severity": "HARM_SEVERITY_" + LEVELS[level(severity)],
                      "severityScore": round(severity, 6)}
            setting = settings.get(category)
            if setting and setting.level is not None:
                score = severity if setting.method == "SEVERITY" else probability
                if level(score) >= setting.level:
                    rating["blocked"] = True
                    blocked = True
            ratings.append(rating)
        return ratings, blocked


# ---- applied to a generation (genai/routes.py)


def screen_prompt(classifier: Classifier, text: str, settings: dict[str, Setting]):
    """Vertex's promptFeedback when a setting blocks the prompt, else None. Only a request
    with a filter set is screened (Vertex returns prompt ratings only with a block)."""
    if not any(s.level is not None for s in settings.values()):
        return None
    ratings, blocked = classifier.rate(text, settings)
    if not blocked:
        return None
    return {"blockReason": "SAFETY", "safetyRatings": ratings,
            "blockReasonMessage": "The prompt was blocked due to safety reasons. The local "
                                  "safety classifier rated it at or above a threshold of the "
                                  "request's safety_settings."}


def screen_answers(classifier: Classifier, candidates: list[dict],
                   settings: dict[str, Setting]) -> None:
    """Rates every candidate (Vertex returns safetyRatings on each answer); a blocked one
    loses its content and finishes with SAFETY."""
    for candidate in candidates:
        text = "\n".join(p["text"] if "text" in p else json.dumps(p)
                         for p in candidate["parts"])
        candidate["safety_ratings"], blocked = classifier.rate(text, settings)
        if blocked:
            candidate["parts"], candidate["finish_reason"] = [], "SAFETY"


# ---- fitting and measuring (run by hand when safety_data.tsv changes)


def labelled() -> list[tuple[str, int, str, bool]]:
    """(category, severity, text, held_out) for each line of the data set."""
    rows, seen = [], {}
    for line in DATA.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        category, severity, text = line.split("\t")
        seen[category] = seen.get(category, 0) + 1
        name = "NONE" if category == "NONE" else "HARM_CATEGORY_" + category
        rows.append((name, int(severity), text, seen[category] % HELD_OUT_EVERY == 0))
    return rows


def data_sha256() -> str:
    return hashlib.sha256(DATA.read_bytes()).hexdigest()


def fit(embed) -> dict:
    from sklearn.linear_model import LogisticRegression, Ridge

    rows = [r for r in labelled() if not r[3]]
    x = np.array(embed([r[2] for r in rows]))
    categories = {}
    for category in CATEGORIES:
        harmful = np.array([r[0] == category and r[1] > 0 for r in rows])
        severity = np.array([r[1] / 3 if r[0] == category else 0.0 for r in rows])
        p = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000).fit(x, harmful)
        s = Ridge(alpha=0.5).fit(x, severity)
        categories[category] = {
            "probability": {"coef": [round(float(v), 6) for v in p.coef_[0]],
                            "intercept": round(float(p.intercept_[0]), 6)},
            "severity": {"coef": [round(float(v), 6) for v in s.coef_],
                         "intercept": round(float(s.intercept_), 6)}}
    return {"embedder": "all-MiniLM-L6-v2", "data": DATA.name, "data_sha256": data_sha256(),
            "categories": categories}


def measure(classifier: Classifier) -> dict:
    """Precision and recall on the held-out lines, a text counted as flagged in a category
    when its probability level is MEDIUM or above (what BLOCK_MEDIUM_AND_ABOVE blocks)."""
    rows = [r for r in labelled() if r[3]]
    predicted = [{c for c, (p, _) in classifier.scores(r[2]).items() if level(p) >= 2}
                 for r in rows]
    out = {}
    for category in (*CATEGORIES, "all"):
        truth = [(r[0] == category or (category == "all" and r[0] != "NONE")) for r in rows]
        flagged = [(category in f) if category != "all" else bool(f) for f in predicted]
        tp = sum(t and f for t, f in zip(truth, flagged, strict=True))
        out[category] = {"precision": tp / max(1, sum(flagged)),
                         "recall": tp / max(1, sum(truth)), "support": sum(truth)}
    out["held_out"] = len(rows)
    return out


def _embedder():
    from labkit.genai.engine import Engine

    engine = Engine()
    return lambda texts: [v["values"] for v in engine.embed(texts, None, True)]


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "measure"
    embed = _embedder()
    if command == "fit":
        WEIGHTS.write_text(json.dumps(fit(embed)) + "\n")
    print(json.dumps(measure(Classifier(embed)), indent=1))
