"""Feature attributions for endpoint.explain(), in Vertex Explainable AI's shape.

Methods (the model's explanationSpec.parameters):
- sampledShapleyAttribution {pathCount}: for each of pathCount random feature orders, the
  features are switched one at a time from the baseline to the instance and each gets the
  change of the explained output; attributions are the means over paths. Along every path
  the changes add up to f(instance) - f(baseline) exactly, so the sum is exact; the reported
  approximationError is the standard error of the attributions (sqrt of the summed
  per-feature variances over pathCount) relative to |f(instance) - f(baseline)|.
- integratedGradientsAttribution {stepCount}: the path integral of the gradient from the
  baseline to the instance, by the trapezoid rule over stepCount steps. For a TensorFlow
  SavedModel the gradients come from tf.GradientTape on its serving_default signature,
  computed by its model server process (predict_fn.gradients, see serving.PredictFn: the
  services process never loads the model); for other models they are central finite
  differences through the served model.
  approximationError is |sum(attributions) - (f(instance) - f(baseline))| relative to
  |f(instance) - f(baseline)|: the integral's discretisation error.
- XRAI and example-based explanations run only on Vertex AI.

Features: dict instances are explained per key (explanationSpec.metadata.inputs names
them; their inputBaselines[0] is the baseline); list instances per position, named by the
one input's indexFeatureMapping (its inputBaselines[0] is the baseline list). Without a
baseline, numbers start from 0 and strings from "" (Vertex's default is zero baselines).
featureAttributions maps feature name -> attribution. For a list instance it depends on the
input's encoding, as on Vertex (ExplanationMetadata.InputMetadata.Encoding, "Defaults to
IDENTITY", and Attribution.featureAttributions: "If the feature is an array of scalar values,
the attribution value is an array"): BAG_OF_FEATURES (each index a feature, named by
indexFeatureMapping) gives one attribution per feature name; IDENTITY, the default, treats
the list as one feature and gives {input name: [one attribution per position]}.
The explained output: a number as is; a list of scores: the highest (outputIndex [k],
outputDisplayName from the output's indexDisplayNameMapping); an object: the output named
by explanationSpec.metadata.outputs.
"""

from __future__ import annotations

import math

import numpy as np

from labkit.vertex import errors

# InputMetadata.Encoding values (names, or numbers with enum-encoding=int) that map each
# index of a list to a named feature
BAGS = {"BAG_OF_FEATURES", "BAG_OF_FEATURES_SPARSE", "INDICATOR", "2", "3", "4"}


class Layout:
    """How features sit in an instance and what the baseline instance is."""

    def __init__(self, spec: dict, instance):
        self.group = None  # the input name when a list instance is one IDENTITY feature
        meta = spec.get("metadata") or {}
        inputs = meta.get("inputs") or {}
        self.is_dict = isinstance(instance, dict)
        if self.is_dict:
            self.names = list(inputs) if inputs else list(instance)
            missing = [n for n in self.names if n not in instance]
            if missing:
                raise errors.invalid(f"The instance has no value for explanation input(s) "
                                     f"{missing}.")
            self.baseline = {**instance}
            for name in self.names:
                given = (inputs.get(name) or {}).get("inputBaselines") or []
                self.baseline[name] = given[0] if given else _zero(instance[name])
        else:
            mapped = next((m.get("indexFeatureMapping") for m in inputs.values()
                           if m.get("indexFeatureMapping")), None)
            one = next(iter(inputs.items())) if len(inputs) == 1 else None
            if one and str((one[1] or {}).get("encoding", "IDENTITY")) not in BAGS:
                self.group = one[0]  # IDENTITY: the whole list is one feature
            self.names = list(mapped) if mapped else (
                list(inputs) if len(inputs) == len(instance) else
                [f"feature_{i}" for i in range(len(instance))])
            if len(self.names) != len(instance):
                raise errors.invalid(f"The instance has {len(instance)} values but the "
                                     f"explanation metadata names {len(self.names)} features.")
            given = next((m.get("inputBaselines") for m in inputs.values()
                          if m.get("inputBaselines")), None)
            if given and isinstance(given[0], list):
                self.baseline = list(given[0])
            else:
                self.baseline = [_zero(v) for v in instance]
        self.keys = self.names if self.is_dict else list(range(len(self.names)))

    def values(self, instance) -> list:
        return [instance[k] for k in self.keys]

    def build(self, instance, switched: set[int]):
        row = dict(self.baseline) if self.is_dict else list(self.baseline)
        for j in switched:
            row[self.keys[j]] = instance[self.keys[j]]
        return row


def _zero(value):
    return "" if isinstance(value, str) else 0


class Output:
    """Which number of a prediction is explained."""

    def __init__(self, spec: dict, prediction):
        outputs = (spec.get("metadata") or {}).get("outputs") or {}
        self.name = next(iter(outputs), None)
        meta = outputs.get(self.name) or {}
        self.key = None
        if isinstance(prediction, dict):
            self.key = meta.get("outputTensorName") or self.name
            if self.key not in prediction:
                if len(prediction) != 1:
                    raise errors.invalid(f"explanationSpec.metadata.outputs must name one of "
                                         f"the prediction's outputs {sorted(prediction)}.")
                self.key = next(iter(prediction))
            prediction = prediction[self.key]
        self.index = None
        if isinstance(prediction, list):
            flat = np.asarray(prediction, dtype=float).ravel()
            self.index = int(np.argmax(flat))
        elif not isinstance(prediction, (int, float)) or isinstance(prediction, bool):
            raise errors.invalid(f"Explanations need a numeric prediction (a score or a list "
                                 f"of scores); the model returned {prediction!r}.")
        mapping = meta.get("indexDisplayNameMapping")
        self.display = (str(mapping[self.index]) if isinstance(mapping, list)
                        and self.index is not None and self.index < len(mapping) else None)

    def value(self, prediction) -> float:
        if self.key is not None:
            prediction = prediction[self.key]
        if self.index is not None:
            return float(np.asarray(prediction, dtype=float).ravel()[self.index])
        return float(prediction)

    def fields(self) -> dict:
        out = {}
        if self.index is not None:
            out["outputIndex"] = [self.index]
        if self.display:
            out["outputDisplayName"] = self.display
        if self.name:
            out["outputName"] = self.name
        return out


def method(spec: dict) -> tuple[str, int]:
    params = spec.get("parameters") or {}
    if "sampledShapleyAttribution" in params:
        return "shapley", int(params["sampledShapleyAttribution"].get("pathCount") or 0)
    if "integratedGradientsAttribution" in params:
        return "ig", int(params["integratedGradientsAttribution"].get("stepCount") or 50)
    if "xraiAttribution" in params:
        raise errors.gcp_only("XRAI attributions")
    if "examples" in params:
        raise errors.gcp_only("Example-based explanations")
    raise errors.invalid("The model's explanation_spec names no attribution method.")


def attribute(spec: dict, instances: list, predictions: list, predict_fn,
              model: dict | None = None, seed: int | None = None) -> list[dict]:
    """One {"attributions": [...]} per instance. predict_fn(instances) -> predictions; where it
    has a `gradients` attribute, integrated gradients use those exact gradients.
    (model is the model version explained; the attributions need nothing from it.)"""
    kind, count = method(spec)
    if kind == "shapley":
        if not 1 <= count <= 50:
            raise errors.invalid("sampled_shapley_attribution.path_count must be in [1, 50].")
        return _shapley(spec, instances, predictions, predict_fn, count, seed)
    if not 1 <= count <= 100:
        raise errors.invalid("integrated_gradients_attribution.step_count must be in "
                             "[1, 100].")
    return _integrated_gradients(spec, instances, predictions, predict_fn, count)


def _shapley(spec, instances, predictions, predict_fn, paths, seed) -> list[dict]:
    rng = np.random.default_rng(seed)
    plans = []
    rows: list = []
    for instance in instances:
        layout = Layout(spec, instance)
        m = len(layout.names)
        orders = [rng.permutation(m) for _ in range(paths)]
        first = len(rows)
        rows.append(layout.build(instance, set()))
        for order in orders:
            switched: set[int] = set()
            for j in order:
                switched.add(int(j))
                rows.append(layout.build(instance, switched))
        plans.append((layout, orders, first))
    outputs = predict_fn(rows)
    explanations = []
    for (layout, orders, first), prediction in zip(plans, predictions, strict=True):
        out = Output(spec, prediction)
        values = [out.value(p) for p in outputs[first:first + 1 + paths * len(layout.names)]]
        base = values[0]
        m = len(layout.names)
        per_path = np.zeros((paths, m))
        for p, order in enumerate(orders):
            previous = base
            for step, j in enumerate(order):
                current = values[1 + p * m + step]
                per_path[p, j] = current - previous
                previous = current
        attributions = per_path.mean(axis=0)
        instance_value = out.value(prediction)
        gap = abs(instance_value - base)
        spread = math.sqrt(float(per_path.var(axis=0, ddof=1).sum()) / paths) if paths > 1 else 0
        explanations.append(_explanation(layout, attributions, base, instance_value,
                                         spread / gap if gap > 1e-12 else 0.0, out))
    return explanations


def _explanation(layout, attributions, base, instance_value, error, out) -> dict:
    return {"attributions": [{
        "baselineOutputValue": base, "instanceOutputValue": instance_value,
        "featureAttributions": {layout.group: [float(a) for a in attributions]}
        if layout.group else {n: float(a) for n, a in zip(layout.names, attributions,
                                                            strict=True)},
        "approximationError": float(error), **out.fields()}]}


def _integrated_gradients(spec, instances, predictions, predict_fn, steps):
    alphas = np.linspace(0.0, 1.0, steps + 1)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] /= 2  # trapezoid rule
    explanations = []
    gradient_fn = _served_gradients(predict_fn)
    for instance, prediction in zip(instances, predictions, strict=True):
        layout = Layout(spec, instance)
        try:
            x = np.asarray(layout.values(instance), dtype=float)
            b = np.asarray([layout.baseline[k] for k in layout.keys], dtype=float)
        except (TypeError, ValueError):
            raise errors.invalid("Integrated gradients need numeric features; use sampled "
                                 "Shapley for models with categorical inputs.") from None
        out = Output(spec, prediction)
        points = b + alphas[:, None] * (x - b)
        if gradient_fn is not None:
            grads, values = gradient_fn(layout, points, out)
        else:
            grads, values = _finite_differences(layout, points, out, predict_fn)
        attributions = (weights[:, None] * grads).sum(axis=0) * (x - b)
        delta = values[-1] - values[0]
        error = abs(attributions.sum() - delta) / abs(delta) if abs(delta) > 1e-12 else 0.0
        explanations.append(_explanation(layout, attributions, float(values[0]),
                                         out.value(prediction), error, out))
    return explanations


def _rows(layout: Layout, points: np.ndarray) -> list:
    if layout.is_dict:
        return [dict(zip(layout.names, map(float, p), strict=True)) for p in points]
    return [list(map(float, p)) for p in points]


def _finite_differences(layout, points, out, predict_fn):
    m = points.shape[1]
    scale = np.maximum(np.abs(points).max(axis=0), 1.0)
    h = 1e-3 * scale
    batch = [points]
    for j in range(m):
        for sign in (1, -1):
            moved = points.copy()
            moved[:, j] += sign * h[j]
            batch.append(moved)
    values = np.asarray([out.value(p) for p in predict_fn(_rows(layout, np.vstack(batch)))])
    n = len(points)
    grads = np.zeros_like(points)
    for j in range(m):
        plus = values[n * (1 + 2 * j): n * (2 + 2 * j)]
        minus = values[n * (2 + 2 * j): n * (3 + 2 * j)]
        grads[:, j] = (plus - minus) / (2 * h[j])
    return grads, values[:n]


def _served_gradients(predict_fn):
    """Gradients from the model server (TensorFlow SavedModels), or None for other models."""
    gradients = getattr(predict_fn, "gradients", None)
    if gradients is None:
        return None

    def served(layout: Layout, points: np.ndarray, out: Output):
        grads, values = gradients(points.tolist(), layout.names if layout.is_dict else None,
                                  out.key, out.index)
        return np.asarray(grads, dtype=float), np.asarray(values, dtype=float)

    return served
