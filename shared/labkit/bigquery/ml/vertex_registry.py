"""CREATE MODEL ... OPTIONS(model_registry = 'vertex_ai'): the options and the Vertex model ID.
The registering itself is labkit.vertex.bigquery_models.VertexRegistration, which the
services wiring hands to BigQuery ML (BigQuery never imports Vertex AI), one model version
per training.

docs: "Manage BigQuery ML models in Vertex AI"
(https://cloud.google.com/bigquery/docs/managing-models-vertex), the CREATE MODEL options
MODEL_REGISTRY, VERTEX_AI_MODEL_ID and VERTEX_AI_MODEL_VERSION_ALIASES, and "Update a
BigQuery ML model" (https://cloud.google.com/bigquery/docs/update_vertex):
- VERTEX_AI_MODEL_ID names the Vertex model; a new ID registers version 1, an existing one
  gets a new version (so CREATE OR REPLACE registers each retraining as a version);
- VERTEX_AI_MODEL_VERSION_ALIASES are set on the new version, taken from other versions;
- the registered model is deployable to an endpoint without exporting it: Vertex serves
  it itself. Locally the model is exported (labkit.bigquery.ml.export) into the BigQuery
  model store and served by the matching prebuilt container (TensorFlow or XGBoost),
  with the instance format of an exported model. ARIMA_PLUS models (and the model types
  the local BigQuery cannot export) are registered but cannot be deployed, as on Vertex
  for ARIMA_PLUS;
- a model version that came from BigQuery ML has modelSourceInfo.sourceType BQML; DROP
  MODEL removes the versions it registered (models registered from BigQuery ML are deleted
  from BigQuery ML, not from the registry).
"""

from __future__ import annotations

import re

from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.statements import ModelRef

# UploadModelRequest.model_id: up to 63 characters of [a-z0-9_-], not starting with a
# digit or hyphen (Vertex AI REST reference, projects.locations.models.upload).
MODEL_ID = re.compile(r"[a-z_][a-z0-9_-]{0,62}")
# BigQuery dataset location -> the Vertex AI region its models are registered in
MULTI_REGIONS = {"US": "us-central1", "EU": "europe-west4"}


def check_options(options: dict) -> None:
    registry = options.get("model_registry")
    if registry is not None and str(registry).lower() != "vertex_ai":
        raise MLError(f"Invalid value for option model_registry: {registry}. The supported "
                      "value is 'vertex_ai'.")
    for key in ("vertex_ai_model_id", "vertex_ai_model_version_aliases"):
        if options.get(key) is not None and registry is None:
            raise MLError(f"Option {key} can only be set together with "
                          "model_registry='vertex_ai'.")
    model_id = options.get("vertex_ai_model_id")
    if model_id is not None and not (isinstance(model_id, str) and MODEL_ID.fullmatch(model_id)):
        raise MLError(f"Invalid value for option vertex_ai_model_id: {model_id!r}. It may be "
                      "up to 63 characters of lower case letters, digits, hyphens and "
                      "underscores, not starting with a digit or hyphen.")
    aliases = options.get("vertex_ai_model_version_aliases")
    if aliases is not None and not (isinstance(aliases, list)
                                    and all(isinstance(a, str) for a in aliases)):
        raise MLError("Option vertex_ai_model_version_aliases must be an ARRAY<STRING>.")


def region_of(location: str) -> str:
    return MULTI_REGIONS.get(location.upper(), location.lower())


def vertex_model_id(ref: ModelRef, options: dict) -> str:
    model_id = options.get("vertex_ai_model_id") or ref.model
    if not MODEL_ID.fullmatch(model_id):
        raise MLError(f"The model name {ref.model} is not a valid Vertex AI model ID; set "
                      "vertex_ai_model_id (lower case letters, digits, hyphens, underscores).")
    return model_id
