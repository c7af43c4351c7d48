"""Model servers behind deployModel and batch prediction.

A model's containerSpec decides the engine, as on Vertex AI:
- a prebuilt prediction image (…/vertex-ai/prediction/sklearn-cpu.1-6, xgboost-cpu.2-1,
  tf2-cpu.2-15, and the older gcr.io/cloud-aiplatform/prediction/… names), checked against
  Google's list (labkit.vertex.containers: unknown or retired images are refused, images
  past end of patch logged), loads the artifact the way that image does (`prebuilt`), in a
  model server child process of its own (`host`, started and spoken to by `process`): the
  learner's pickle never runs in the services process, and a pickle written by a newer
  scikit-learn or XGBoost than the image's is refused before it is unpickled;
- a custom prediction routine (CPR): a containerSpec whose env names PREDICTOR_MODULE /
  PREDICTOR_CLASS (and optionally HANDLER_MODULE / HANDLER_CLASS), as the image that
  LocalModel.build_cpr_model builds sets them. Locally that package's own model server
  (CprModelServer) runs the predictor from the model's artifact folder (`cpr`);
- Model Garden's vLLM serving image (us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-
  dockers/pytorch-vllm-serve) is answered by the local Gemma (labkit.genai.model_garden);
- any other image is a custom container: it needs Docker and Vertex AI, so it fails with
  an error that says it runs with LAB_BACKEND=gcp.

The model server child imports this package, so it imports the services' modules (errors,
storage) only inside the functions the services process calls.
"""

from __future__ import annotations

from pathlib import Path

from labkit.workspace import Workspace

CPR_KEYS = ("PREDICTOR_MODULE", "HANDLER_MODULE")
ENGINES = {"sklearn": "sklearn", "xgboost": "xgboost", "tf2": "tensorflow", "tf": "tensorflow"}


def container_env(model: dict) -> dict[str, str]:
    spec = model.get("containerSpec") or {}
    return {e.get("name", ""): e.get("value", "") for e in spec.get("env") or []}


def image_of(model: dict):
    """The prebuilt prediction image the model names (labkit.vertex.containers.Image), or
    None for a custom container. Raises as Vertex does for an unknown or retired prebuilt
    image, and logs a warning for one past its end of patch."""
    from labkit.vertex import containers

    return containers.check((model.get("containerSpec") or {}).get("imageUri", ""),
                            "prediction")


def framework_of(model: dict) -> str:
    """'sklearn', 'xgboost', 'tensorflow' or 'cpr'; raises for what runs only on Vertex."""
    from labkit.genai import model_garden
    from labkit.vertex import errors

    image_uri = (model.get("containerSpec") or {}).get("imageUri", "")
    if model_garden.serves(model):  # Model Garden's vLLM container: the local Gemma
        return "model-garden"
    image = image_of(model)
    if any(key in container_env(model) for key in CPR_KEYS):
        return "cpr"
    if image is not None and image.framework in ENGINES:
        return ENGINES[image.framework]
    if image is not None:
        raise errors.gcp_only(f"Serving with the prebuilt {image.framework} container "
                              f"{image_uri!r}")
    raise errors.gcp_only(f"Serving the custom container image {image_uri!r} (Docker)")


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

    image_of(model)  # an unknown or retired prebuilt image is refused at upload, as on Vertex
    try:
        engine = framework_of(model)
    except errors.VertexError:
        return
    if engine in ("cpr", "model-garden"):
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
    if engine == "model-garden":
        from labkit.genai.model_garden import VllmServer

        return VllmServer(model)  # in this process: the weights are memory-mapped, shared
    folder = artifact_dir(model, workspace)
    if engine == "cpr":
        from labkit.vertex.serving.cpr import CprServer

        return CprServer(model, folder)
    from labkit.vertex.serving.process import ModelServer

    uri = model.get("artifactUri", "")
    image = image_of(model)
    path = find_model_file(engine, folder, uri)
    return ModelServer(engine, folder, path, uri,
                       framework_version=_version_to_enforce(engine, path, image))


def _version_to_enforce(engine: str, path: Path, image) -> str | None:
    """The container's framework version, which the model server enforces (an artifact a
    newer framework wrote is refused, as Vertex's server fails to load it), unless no listed
    container is new enough for the artifact: our copy of Google's table may be older than
    Google's, so then the deployment goes ahead with a warning that says what to check."""
    if image is None or engine not in ("sklearn", "xgboost"):
        return image.version if image else None
    import logging

    from labkit.vertex import containers
    from labkit.vertex.serving import prebuilt

    written = prebuilt.writer_versions(engine, path)
    newest = containers.newest("prediction", image.framework)
    if written and newest and prebuilt.minor(max(written, key=prebuilt.minor)) > \
            prebuilt.minor(newest):
        logging.getLogger("labkit.vertex").warning(
            "%s was written by %s %s; the newest prebuilt %s prediction container in "
            "labkit's copy of Google's list (%s) serves %s, which cannot load it. Deploying "
            "anyway: check Google's current list; if it still ends at %s, this deployment "
            "fails on Vertex AI ('Model server never became ready').", path.name,
            image.framework, max(written, key=prebuilt.minor), image.framework,
            containers.table()["sources"]["prediction-list"]["url"], newest, newest)
        return None
    return image.version


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
