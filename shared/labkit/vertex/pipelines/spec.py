"""The compiled PipelineSpec (KFP IR, schema 2.1) as Vertex checks and reads it."""

from __future__ import annotations

import json
import re

from labkit.vertex import errors

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
LIGHTWEIGHT = "kfp.dsl.executor_main"
GOOGLE_LAUNCHER = "google_cloud_pipeline_components.container."
# The launcher of GCPC ops that call one Vertex AI SDK method (dataset and AutoML ops).
REMOTE_RUNNER = GOOGLE_LAUNCHER + "v1.aiplatform.remote_runner"


def validate(spec: object, parameter_values: dict) -> dict:
    """Rejects what Vertex rejects at create time, with its INVALID_ARGUMENT error."""
    def bad(detail: str) -> errors.VertexError:
        return errors.invalid(f"Invalid PipelineJob: the pipeline spec is invalid: {detail}")

    if not isinstance(spec, dict) or not spec:
        raise bad("pipeline_spec is required (compile the pipeline with kfp.compiler).")
    for key in ("root", "pipelineInfo", "schemaVersion"):
        if key not in spec:
            raise bad(f"missing field {key!r}.")
    name = spec["pipelineInfo"].get("name", "")
    if not NAME.fullmatch(name):
        raise bad(f"pipelineInfo.name {name!r} must match regex {NAME.pattern}.")
    components = spec.get("components", {})
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    for cname, component in [("root", spec["root"])] + list(components.items()):
        if "dag" in component:
            tasks = component["dag"].get("tasks", {})
            if not tasks:
                raise bad(f"component {cname} has an empty DAG.")
            for tname, task in tasks.items():
                ref = task.get("componentRef", {}).get("name")
                if ref not in components:
                    raise bad(f"task {tname} refers to component {ref!r}, which is not defined.")
                for dep in task.get("dependentTasks", []):
                    if dep not in tasks:
                        raise bad(f"task {tname} depends on unknown task {dep!r}.")
        elif component.get("executorLabel") not in executors:
            raise bad(f"component {cname} names executor {component.get('executorLabel')!r}, "
                      f"which is not in deploymentSpec.")
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for key in parameter_values:
        if key not in declared:
            raise errors.invalid(f"Invalid PipelineJob: parameter {key!r} is not an input of "
                                 f"pipeline {name}; its inputs are {sorted(declared)}.")
    for key, definition in declared.items():
        if key not in parameter_values and "defaultValue" not in definition \
                and not definition.get("isOptional"):
            raise errors.invalid(f"Invalid PipelineJob: required parameter {key!r} of pipeline "
                                 f"{name} has no value.")
    return spec


def parameter_value(value, parameter_type: str | None):
    """Casts a parameter to its declared type (JSON numbers arrive as floats)."""
    if parameter_type == "NUMBER_INTEGER" and isinstance(value, (float, str)):
        return int(float(value))
    if parameter_type == "NUMBER_DOUBLE" and isinstance(value, (int, str)):
        return float(value)
    if parameter_type in ("LIST", "STRUCT") and isinstance(value, str):
        return json.loads(value)
    if parameter_type == "BOOLEAN" and isinstance(value, str):
        return value.lower() == "true"
    return value


def evaluate_condition(condition: str, parameters: dict) -> bool:
    """Evaluates a triggerPolicy condition (the CEL subset the KFP compiler emits)."""
    expression = re.sub(r"inputs\.parameter_values\[(['\"])(.*?)\1\]",
                        lambda m: f"_p[{m[2]!r}]", condition)
    if "inputs.artifacts" in expression:
        raise errors.gcp_only("Conditions on artifact metadata (dsl.If on an artifact)")
    expression = (expression.replace("&&", " and ").replace("||", " or ")
                  .replace("true", "True").replace("false", "False"))
    expression = re.sub(r"!(?!=)", " not ", expression)
    namespace = {"_p": parameters, "int": int, "double": float, "string": str,
                 "bool": bool, "__builtins__": {}}
    try:
        return bool(eval(expression, namespace))  # noqa: S307 - names limited to the above
    except Exception as exc:  # a condition the local engine cannot read fails the task
        raise ValueError(f"Cannot evaluate condition {condition!r}: {exc}") from exc
