"""Model servers behind deployModel and batch prediction.

A model's containerSpec decides the engine, as on Vertex AI:
- a prebuilt prediction image (…/vertex-ai/prediction/sklearn-cpu.1-5, xgboost-cpu.2-1,
  tf2-cpu.2-15, and the older gcr.io/cloud-aiplatform/prediction/… names) loads the
  artifact the way that image does (`prebuilt`), in a model server child process of its
  own (`host`, started and spoken to by `process`): the learner's pickle never runs in
  the services process;
- a custom prediction routine (CPR): a containerSpec whose env names PREDICTOR_MODULE /
  PREDICTOR_CLASS (and optionally HANDLER_MODULE / HANDLER_CLASS), as the image that
  LocalModel.build_cpr_model builds sets them. Locally that package's own model server
  (CprModelServer) runs the predictor from the model's artifact folder (`cpr`);
- any other image is a custom container: it needs Docker and Vertex AI, so it fails with
  an error that says it runs with LAB_BACKEND=gcp.

The model server child imports this package, so it imports the services' modules (errors,
storage) only inside the functions the services process calls.
"""

from __future__ import annotations

import re
from pathlib import Path

from labkit.workspace import Workspace

PREBUILT = re.compile(
    r"(?:[a-z0-9-]+-docker\.pkg\.dev/vertex-ai/prediction|"
    r"(?:[a-z]+\.)?gcr\.io/cloud-aiplatform/prediction)/"
    r"(?P<framework>sklearn|xgboost|tf2|tf)-(?P<device>cpu|gpu)\.(?P<version>[0-9-]+)(?::\S*)?")
CPR_KEYS = ("PREDICTOR_MODULE", "HANDLER_MODULE")


def container_env(model: dict) -> dict[str, str]:
    spec = model.get("containerSpec") or {}
    return {e.get("name", ""): e.get("value", "") for e in spec.get("env") or []}


def framework_of(model: dict) -> str:
    """'sklearn', 'xgboost', 'tensorflow' or 'cpr'; raises for what runs only on Vertex."""
    from labkit.vertex import errors

    image = (model.get("containerSpec") or {}).get("imageUri", "")
    if any(key in container_env(model) for key in CPR_KEYS):
        return "cpr"
    m = PREBUILT.fullmatch(image)
    if m:
        return {"sklearn": "sklearn", "xgboost": "xgboost"}.get(m["framework"], "tensorflow")
    raise errors.gcp_only(f"Serving the custom container image {image!r} (Docker)")


def artifact_dir(model: dict, workspace: Workspace) -> Path:
    from labkit.storage import local_path
    from labkit.vertex import errors

    uri = model.get("artifactUri") or ""
    if not uri:
        raise errors.invalid("The model has no artifact_uri: prebuilt prediction containers "
                             "load the model from it.")
    path = local_path(uri.rstrip("/") + "/", workspace) if uri.startswith("gs://") else Path(uri)
    return path


def check_upload(model: dict, workspace: Workspace) -> None:
    """What Vertex checks at upload time: a prebuilt container finds its model file.

    Custom containers upload fine (the registry is only metadata); serving them is what
    fails locally, at deploy or batch prediction time.
    """
    from labkit.vertex import errors

    try:
        engine = framework_of(model)
    except errors.VertexError:
        return
    if engine == "cpr":
        return
    find_model_file(engine, artifact_dir(model, workspace), model.get("artifactUri", ""))


def find_model_file(engine: str, folder: Path, uri: str) -> Path:
    """The one model file a prebuilt container loads from the artifact folder."""
    from labkit.vertex import errors
    from labkit.vertex.serving.prebuilt import MODEL_FILES, present_model_files

    present = present_model_files(engine, folder)
    if len(present) != 1:
        raise errors.invalid(f"Model directory {uri} is expected to contain exactly one of: "
                             f"[{', '.join(MODEL_FILES[engine])}].")
    return present[0]


def load(model: dict, workspace: Workspace):
    """A loaded predictor: .predict(instances, parameters) -> list, .close(); a model server
    process (prebuilt containers and custom prediction routines alike)."""
    engine = framework_of(model)
    folder = artifact_dir(model, workspace)
    if engine == "cpr":
        from labkit.vertex.serving.cpr import CprServer

        return CprServer(model, folder)
    from labkit.vertex.serving.process import ModelServer

    uri = model.get("artifactUri", "")
    return ModelServer(engine, folder, find_model_file(engine, folder, uri), uri)


class PredictFn:
    """predict_fn(instances) -> predictions for the explanation engine, with the deployed
    model's parameters; .gradients (TensorFlow SavedModels: computed by the model server)
    or None."""

    def __init__(self, predictor, parameters: dict | None = None):
        self.predictor = predictor
        self.parameters = parameters
        self.gradients = (predictor.gradients
                          if getattr(predictor, "engine", "") == "tensorflow" else None)

    def __call__(self, instances: list) -> list:
        return self.predictor.predict(instances, self.parameters)
