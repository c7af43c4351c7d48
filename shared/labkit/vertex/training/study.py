"""The study behind a HyperparameterTuningJob: the parameter specs parsed into
labkit.hparams' search space (its algorithms propose the trials), and stopping.

Median automated stopping (medianAutomatedStoppingSpec), Vertex's rule: a running trial is
stopped when its best objective so far is strictly worse than the median, over completed
trials, of their running-average objective up to the same step.
"""

from __future__ import annotations

import numpy as np

from labkit.hparams import Param, SearchSpaceError, Suggester
from labkit.vertex import errors


def suggester(params: list[Param], algorithm: str, maximize: bool, seed=None) -> Suggester:
    """labkit.hparams.Suggester, its refusals in Vertex's error shape."""
    try:
        return Suggester(params, algorithm, maximize, seed=seed)
    except SearchSpaceError as exc:
        raise errors.invalid(str(exc)) from None


def _scale_name(value) -> str:
    from google.cloud.aiplatform_v1.types import StudySpec

    if value in (None, "", 0):
        return "UNIT_LINEAR_SCALE"
    try:
        return StudySpec.ParameterSpec.ScaleType(int(value)).name
    except ValueError:
        return str(value)


def parse_parameters(specs: list[dict]) -> list[Param]:
    if not specs:
        raise errors.invalid("study_spec.parameters must not be empty.")
    params = []
    for spec in specs:
        pid = spec.get("parameterId")
        if not pid:
            raise errors.invalid("study_spec.parameters[].parameter_id is required.")
        if spec.get("conditionalParameterSpecs"):
            raise errors.gcp_only("Conditional hyperparameters (conditional_parameter_specs)")
        scale = _scale_name(spec.get("scaleType"))
        if "doubleValueSpec" in spec or "integerValueSpec" in spec:
            kind = "DOUBLE" if "doubleValueSpec" in spec else "INTEGER"
            value_spec = spec.get("doubleValueSpec") or spec.get("integerValueSpec")
            low, high = float(value_spec.get("minValue", 0)), float(value_spec.get("maxValue", 0))
            if low > high:
                raise errors.invalid(f"Parameter {pid}: min_value {low} is greater than "
                                     f"max_value {high}.")
            param = Param(pid, kind, low, high, scale=scale)
        elif "discreteValueSpec" in spec:
            values = tuple(sorted(float(v) for v in spec["discreteValueSpec"].get("values", [])))
            if not values:
                raise errors.invalid(f"Parameter {pid}: discrete_value_spec.values is empty.")
            param = Param(pid, "DISCRETE", values[0], values[-1], values, scale)
        elif "categoricalValueSpec" in spec:
            values = tuple(spec["categoricalValueSpec"].get("values", []))
            if not values:
                raise errors.invalid(f"Parameter {pid}: categorical_value_spec.values is empty.")
            param = Param(pid, "CATEGORICAL", values=values)
        else:
            raise errors.invalid(f"Parameter {pid} needs one of double_value_spec, "
                                 f"integer_value_spec, discrete_value_spec, "
                                 f"categorical_value_spec.")
        if param.kind != "CATEGORICAL" and scale in ("UNIT_LOG_SCALE",
                                                     "UNIT_REVERSE_LOG_SCALE") and param.low <= 0:
            raise errors.invalid(f"Parameter {pid}: {scale} needs a minimum value greater "
                                 f"than 0.")
        params.append(param)
    return params


def running_average(measurements: list[tuple[int, float]], up_to_step: int) -> float | None:
    values = [v for step, v in measurements if step <= up_to_step]
    return sum(values) / len(values) if values else None


def median_should_stop(measurements: list[tuple[int, float]],
                       completed: list[list[tuple[int, float]]], maximize: bool) -> bool:
    """Vertex's median automated stopping rule (see the module docstring)."""
    if not measurements:
        return False
    step = measurements[-1][0]
    averages = [a for a in (running_average(m, step) for m in completed) if a is not None]
    if not averages:
        return False
    median = float(np.median(averages))
    values = [v for _, v in measurements]
    best = max(values) if maximize else min(values)
    return best < median if maximize else best > median
