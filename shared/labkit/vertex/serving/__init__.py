"""Model servers behind deployModel and batch prediction.

A model's containerSpec decides the engine, as on Vertex AI:
- a prebuilt prediction image (…/vertex-ai/prediction/sklearn-cpu.1-5, xgboost-cpu.2-1,
  tf2-cpu.2-15, and the older gcr.io/cloud-aiplatform/prediction/… names) loads the
  artifact the way that image does (`prebuilt`);
- a custom prediction routine (CPR): a containerSpec whose env names PREDICTOR_MODULE /
  PREDICTOR_CLASS (and optionally HANDLER_MODULE / HANDLER_CLASS), as the image that
  LocalModel.build_cpr_model builds sets them. Locally that package's own model server
  (CprModelServer) runs the predictor from the model's artifact folder (`cpr`);
- any other image is a custom container: it needs Docker and Vertex AI, so it fails with
  an error that says it runs with LAB_BACKEND=gcp.
"""

from __future__ import annotations

import re
from pathlib import Path

from labkit.storage import local_path
from labkit.vertex import errors

PREBUILT = re.compile(
    r"(?:[a-z0-9-]+-docker\.pkg\.dev/vertex-ai/prediction|"
    r"(?:[a-z]+\.)?gcr\.io/cloud-aiplatform/prediction)/"
    r"(?P<framework>sklearn|xgboost|tf2|tf)-(?P<device>cpu|gpu)\.(?P<version>[0-9-]+)(?::\S*)?")
CPR_KEYS = ("PREDICTOR_MODULE", "HANDLER_MODULE")


def container_env(model: dict) -> dict[str, str]:
    spec = model.get("containerSpec") or {}
    return {e.get("name", ""): e.get("value", "") for e in spec.get("env") or []}


def engine_for(model: dict) -> str:
    """'sklearn', 'xgboost', 'tensorflow' or 'cpr'; raises for what runs only on Vertex."""
    image = (model.get("containerSpec") or {}).get("imageUri", "")
    if any(key in container_env(model) for key in CPR_KEYS):
        return "cpr"
    m = PREBUILT.fullmatch(image)
    if m:
        return {"sklearn": "sklearn", "xgboost": "xgboost"}.get(m["framework"], "tensorflow")
    raise errors.gcp_only(f"Serving the custom container image {image!r} (Docker)")


def artifact_dir(model: dict) -> Path:
    uri = model.get("artifactUri") or ""
    if not uri:
        raise errors.invalid("The model has no artifact_uri: prebuilt prediction containers "
                             "load the model from it.")
    path = local_path(uri.rstrip("/") + "/") if uri.startswith("gs://") else Path(uri)
    return path


def check_upload(model: dict) -> None:
    """What Vertex checks at upload time: a prebuilt container finds its model file.

    Custom containers upload fine (the registry is only metadata); serving them is what
    fails locally, at deploy or batch prediction time.
    """
    try:
        engine = engine_for(model)
    except errors.VertexError:
        return
    if engine == "cpr":
        return
    from labkit.vertex.serving import prebuilt

    prebuilt.find_model_file(engine, artifact_dir(model), model.get("artifactUri", ""))


def load(model: dict):
    """A loaded predictor: .predict(instances, parameters) -> list, .close()."""
    engine = engine_for(model)
    if engine == "cpr":
        from labkit.vertex.serving.cpr import CprServer

        return CprServer(model, artifact_dir(model))
    from labkit.vertex.serving import prebuilt

    return prebuilt.load(engine, artifact_dir(model), model.get("artifactUri", ""))
