"""What the local Vertex AI's endpoint routes call: after every predict, and for explain.

Both get the process's monitoring engine (built once by labkit.services.wiring) bound
in by vertex.service. after_predict never raises: logging must not break serving.
"""

from __future__ import annotations

import random
import re
import sys

from labkit.vertex import errors
from labkit.vertex.monitoring import explain as attributions
from labkit.vertex.monitoring.engine import MonitoringJobs


def logging_table(endpoint: dict) -> str | None:
    """project.dataset.table for the endpoint's predictRequestResponseLoggingConfig, as
    Vertex names it: bq://project -> logging_<display name>_<endpoint id>; no table ->
    request_response_logging."""
    config = endpoint.get("predictRequestResponseLoggingConfig") or {}
    if not config.get("enabled"):
        return None
    uri = (config.get("bigqueryDestination") or {}).get("outputUri") or ""
    parts = uri.removeprefix("bq://").split(".") if uri.startswith("bq://") else []
    if not parts or not parts[0]:
        parts = [endpoint["name"].split("/")[1]]
    endpoint_id = endpoint["name"].rsplit("/", 1)[-1]
    if len(parts) == 1:
        safe = re.sub(r"[^A-Za-z0-9_]", "_", endpoint.get("displayName", ""))
        parts.append(f"logging_{safe}_{endpoint_id}")
    if len(parts) == 2:
        parts.append("request_response_logging")
    return ".".join(parts[:3])


def after_predict(jobs: MonitoringJobs, endpoint: dict, deployed_model_id: str, instances: list,
                  predictions: list) -> None:
    """Called after every successful endpoint predict. Logs request/response per the
    endpoint's predictRequestResponseLoggingConfig (enabled, samplingRate,
    bigqueryDestination.outputUri) into BigQuery, and records the traffic that the
    endpoint's monitoring job analyses. Puts work on a queue (microseconds); never raises."""
    try:
        table = logging_table(endpoint)
        if table:
            rate = float((endpoint.get("predictRequestResponseLoggingConfig") or {}).get(
                "samplingRate") or 1.0)
            if rate >= 1.0 or random.random() < rate:
                jobs.log.bigquery_row(table, endpoint["name"], deployed_model_id, instances,
                                      predictions)
        jobs.record(endpoint["name"], deployed_model_id, instances, predictions)
    except Exception as exc:  # noqa: BLE001 - never into the predict path
        print(f"after_predict hook failed: {type(exc).__name__}: {exc}", file=sys.stderr,
              flush=True)


def explain(jobs: MonitoringJobs, endpoint: dict, deployed_model_id: str, model: dict,
            instances: list, parameters: dict | None, predict_fn) -> dict:
    """endpoint.explain(): attributions for each instance with the deployed model's (or else
    the model version's) explanationSpec. predict_fn(instances) -> predictions calls the
    served model. Raises a Vertex-shaped 400 when there is no explanationSpec."""
    deployed = next((d for d in endpoint.get("deployedModels", [])
                     if d.get("id") == deployed_model_id), {})
    spec = deployed.get("explanationSpec") or model.get("explanationSpec") or {}
    if not spec.get("parameters"):
        raise errors.failed_precondition(
            f"Unable to explain: DeployedModel {deployed_model_id} on {endpoint['name']} has no "
            f"explanation_spec. Upload the model with explanation_parameters and "
            f"explanation_metadata (or deploy it with an explanation_spec).")
    if not isinstance(instances, list) or not instances:
        raise errors.invalid('Invalid JSON payload: "instances" must be a non-empty list.')
    predictions = predict_fn(instances)
    explanations = attributions.attribute(spec, instances, predictions, predict_fn, model)
    after_predict(jobs, endpoint, deployed_model_id, instances, predictions)
    return {"explanations": explanations, "deployedModelId": deployed_model_id,
            "predictions": predictions}


def batch_explanations(model: dict, instances: list, predictions: list, predict_fn,
                       spec_override: dict | None = None) -> list[dict]:
    """For batch prediction with generateExplanation: one explanation per instance (the
    `explanation` each output line carries), with the job's explanationSpec override merged
    over the model's. Raises a Vertex-shaped 400 when neither has parameters."""
    spec = {**(model.get("explanationSpec") or {}), **(spec_override or {})}
    if not spec.get("parameters"):
        raise errors.invalid("generate_explanation needs a model with an explanation_spec (or "
                             "an explanation_spec on the batch prediction job).")
    return attributions.attribute(spec, instances, predictions, predict_fn, model)
