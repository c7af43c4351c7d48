"""Remote models over the local Vertex AI: CREATE MODEL ... REMOTE WITH CONNECTION
{DEFAULT | `project.region.connection`} OPTIONS (ENDPOINT = '...'), and the calls
ML.GENERATE_TEXT / ML.GENERATE_EMBEDDING make through such a model.

Docs: "The CREATE MODEL statement for remote models over LLMs"
(https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-create-remote-model)
and "... for remote models over embedding models"
(https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-create-remote-model-embedding-maas):
ENDPOINT is a model name ('gemini-2.5-flash', 'text-embedding-005') or the model's full
https://...-aiplatform.googleapis.com/... URL; the connection must exist (DEFAULT is the
project's default CLOUD_RESOURCE connection, which BigQuery creates when it is missing).

BigQuery calls Vertex AI with the connection's service account; here the services process
calls its own Vertex AI endpoint (labkit.genai: one generative and one embedding model per
process) with the workspace token, the way vertex/bq.py calls the local BigQuery.
"""

from __future__ import annotations

import re

from labkit.bigquery.ml.errors import MLError, not_local
from labkit.bigquery.ml.model import TrainedModel
from labkit.bigquery.ml.statements import ModelRef
from labkit.bigquery.vertex_ai import vertex_region

DEFAULT_CONNECTION = "__default_cloudresource_connection__"
# the options of remote models over Google's LLMs and embedding models (tuning options,
# PROMPT_COL, INPUT_LABEL_COLS, ..., belong to supervised tuning, which is not local)
_OPTIONS = {"endpoint"}
_TUNING = {"prompt_col", "input_label_cols", "max_iterations", "learning_rate_multiplier",
           "early_stop", "accelerator_type", "data_split_method", "data_split_eval_fraction",
           "data_split_col", "evaluation_task"}
_URL = re.compile(r"^https://(?P<region>[a-z0-9-]+)-aiplatform\.googleapis\.com/v1\w*/projects/"
                  r"[^/]+/locations/[^/]+/publishers/google/models/(?P<model>[^/:@]+)")


def model_of_endpoint(endpoint) -> tuple[str, str]:
    """('generative' | 'embedding', model id) for an ENDPOINT option value."""
    from labkit.genai.engine import EMBEDDING, GENERATIVE

    if not isinstance(endpoint, str) or not endpoint.strip():
        raise MLError("ENDPOINT must be set for a remote model over a Vertex AI model, for "
                      "example ENDPOINT = 'gemini-2.5-flash' or 'text-embedding-005'")
    name = endpoint.strip()
    match = _URL.match(name)
    if match:
        name = match["model"]
    elif name.startswith("https://"):
        raise not_local(f"Remote models over endpoint {endpoint!r} (deployed or open models)")
    name = name.split("@")[0]
    if name in GENERATIVE:
        return "generative", name
    if name in EMBEDDING:
        return "embedding", name
    raise MLError(f"Invalid ENDPOINT '{endpoint}': it is not a supported Vertex AI model. The "
                  f"local Vertex AI serves {', '.join(GENERATIVE + EMBEDDING)}.")


def connection_parts(text: str, project: str) -> tuple[str, str, str]:
    """`project.region.connection` (or region.connection) -> its three parts."""
    parts = [p.strip() for p in text.replace("`", "").split(".")]
    if len(parts) == 2:
        parts = [project, *parts]
    if len(parts) != 3 or not all(parts):
        raise MLError(f"Invalid connection name {text.strip()}: use "
                      "`project_id.region.connection_id` or DEFAULT")
    return parts[0], parts[1].lower(), parts[2]


def create(ref: ModelRef, connection: str, options: dict, query: str | None,
           connections, dataset_location: str) -> TrainedModel:
    """The remote model's artifact (a TrainedModel holding the endpoint and connection). The
    connection lives where the model's dataset does ("The connection must be in the same
    location as the dataset", remote model docs above)."""
    unknown = set(options) - _OPTIONS
    if unknown & _TUNING or query is not None:
        raise not_local("Supervised tuning of remote models (CREATE MODEL ... REMOTE ... AS "
                        "SELECT with tuning options)")
    if unknown:
        raise MLError(f"Unknown option for a remote model: {sorted(unknown)[0]}")
    kind, model_id = model_of_endpoint(options.get("endpoint"))
    if connections is None:
        raise MLError("Remote models need the BigQuery Connection API, which this BigQuery "
                      "was started without")
    here = dataset_location.lower()
    if connection.upper() == "DEFAULT":
        project, location, conn_id = ref.project, here, DEFAULT_CONNECTION
        found = connections.find(project, location, conn_id) or connections.create(
            f"projects/{project}/locations/{location}", conn_id, {"cloud_resource": {}})
    else:
        project, location, conn_id = connection_parts(connection, ref.project)
        found = connections.find(project, location, conn_id)
        if found is None:
            raise MLError(f"Not found: Connection {project}.{location}.{conn_id}", "notFound")
        if location != here:
            raise MLError(f"The connection {project}.{location}.{conn_id} is in {location}, "
                          f"but dataset {ref.project}:{ref.dataset} is in {dataset_location}: "
                          "a remote model's connection must be in its dataset's location")
    return TrainedModel(model_type=f"remote_{kind}", options={
        "endpoint": options["endpoint"], "model_id": model_id, "connection": found["name"],
        "location": location})


def resource(ref: ModelRef, model: TrainedModel, now: float) -> dict:
    """The REST Model resource: remoteModelInfo names the endpoint and the connection."""
    from labkit.bigquery.ml.resource import etag

    ms = str(int(now * 1000))
    region = vertex_region(model.options["location"])
    endpoint = (f"https://{region}-aiplatform.googleapis.com/v1/projects/{ref.project}/"
                f"locations/{region}/publishers/google/models/{model.options['model_id']}")
    body = {"modelReference": ref.as_dict(), "creationTime": ms, "lastModifiedTime": ms,
            "location": model.options["location"].upper() if len(
                model.options["location"]) <= 2 else model.options["location"],
            "remoteModelInfo": {"endpoint": endpoint,
                                "connection": model.options["connection"]}}
    body["etag"] = etag(body)
    return body
