"""Model Garden's open models on the local Vertex AI, answered by the local Gemma 3 270M.

The Vertex SDK's flow (vertexai/model_garden/_model_garden.py, ModelGardenService v1beta1):
- list_deployable_models(): GET publishers/*/models?filter=is_hf_wildcard(false)[ AND
  (model_user_id=~"(?i).*X.*" OR display_name=~"(?i).*X.*")]&listAllVersions=true; it keeps
  the models with supportedActions.multiDeployVertex and names them publisher/model@version;
- OpenModel("google/gemma3@gemma-3-270m").list_deploy_options(): GET that publisher model;
- .deploy(accept_eula=True, machine_type=..., ...): POST projects/P/locations/L:deploy with a
  DeployRequest; its operation's DeployResponse names the endpoint the SDK returns.
Deploying uploads a Model to the Model Registry with Google's vLLM serving container and
deploys it on a new endpoint, as Vertex does. endpoint.predict then takes the container's
instances, {prompt, max_tokens, temperature, top_p, top_k, raw_response}, and answers
"Prompt:\\n{prompt}\\nOutput:\\n{text}" unless raw_response is true (Google's sample
notebook model_garden_gemma3_deployment_on_vertex.ipynb in vertex-ai-samples).

Models Model Garden has but this package does not (gemma-3-1b-it and up) are refused with
a message that says what is local; names Model Garden does not have are Vertex's 404.
"""

from __future__ import annotations

import re

from labkit.genai.engine import Config, Engine, Turn
from labkit.genai.errors import InvalidArgument
from labkit.vertex import errors
from labkit.vertex.machines import validate_dedicated
from labkit.vertex.store import new_id, now

PUBLISHER, FAMILY, VERSION = "google", "gemma3", "gemma-3-270m"
HF_ID = "google/gemma-3-270m"
# Google's vLLM serving image as its Gemma 3 sample deploys it (predict route /generate).
VLLM_IMAGE = ("us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/"
              "pytorch-vllm-serve:20250312_0916_RC01")
VLLM_PREFIX = VLLM_IMAGE.split(":")[0]
# Gemma 3 versions Model Garden lists that the local Vertex AI does not carry.
NOT_PACKAGED = ("gemma-3-1b-it", "gemma-3-1b-pt", "gemma-3-4b-it", "gemma-3-4b-pt",
                "gemma-3-12b-it", "gemma-3-12b-pt", "gemma-3-27b-it", "gemma-3-27b-pt",
                "gemma-3-270m-it")
# The verified configuration Model Garden offers for the small Gemma 3 models.
MACHINE = {"machineType": "g2-standard-12", "acceleratorType": "NVIDIA_L4",
           "acceleratorCount": 1}
MAX_TOKENS = 512  # what one local prediction may write
INSTANCE_KEYS = {"prompt", "max_tokens", "temperature", "top_p", "top_k", "raw_response",
                 "seed", "stop"}


def resolve(name: str, hugging_face: bool = False) -> str:
    """The one local open model `name` means, or Vertex's error: a 404 for what Model
    Garden does not have, a clear refusal for what it has but this package does not."""
    if hugging_face:
        if name.lower() == HF_ID:
            return VERSION
        raise errors.gcp_only(f"Deploying the Hugging Face model {name!r} (the local "
                              f"Vertex AI carries only {HF_ID})")
    match = re.fullmatch(r"(?:publishers/)?(?P<pub>[^/]+)/models/(?P<model>[^/@]+)"
                         r"(?:@(?P<version>[^/@]+))?", name)
    if match is None or match["pub"] != PUBLISHER or match["model"] != FAMILY:
        raise errors.not_found("Publisher model", name)
    version = match["version"] or VERSION
    if version == VERSION:
        return VERSION
    if version in NOT_PACKAGED:
        raise errors.gcp_only(f"The Model Garden model {FAMILY}@{version} (the local Vertex AI "
                              f"carries only {FAMILY}@{VERSION}, Gemma 3 270M on the CPU)")
    raise errors.not_found("Publisher model", f"publishers/{PUBLISHER}/models/{FAMILY}@{version}")


def _deploy_option() -> dict:
    """PublisherModel.CallToAction.Deploy: the container and machine Vertex would use."""
    return {
        "modelDisplayName": VERSION, "deployTaskName": "vLLM 32K context",
        "artifactUri": f"gs://vertex-model-garden-restricted-us/{FAMILY}/{VERSION}",
        "containerSpec": {
            "imageUri": VLLM_IMAGE, "predictRoute": "/generate", "healthRoute": "/ping",
            "ports": [{"containerPort": 8080}],
            "args": ["python", "-m", "vllm.entrypoints.api_server", "--host=0.0.0.0",
                     "--port=8080", f"--model={HF_ID}", "--max-model-len=32768"],
            "env": [{"name": "MODEL_ID", "value": HF_ID},
                    {"name": "DEPLOY_SOURCE", "value": "sdk"}]},
        "dedicatedResources": {"machineSpec": dict(MACHINE), "minReplicaCount": 1,
                               "maxReplicaCount": 1},
        "title": "Deploy on Vertex AI (answered locally by Gemma 3 270M on the CPU)"}


def publisher_model() -> dict:
    option = _deploy_option()
    return {
        "name": f"publishers/{PUBLISHER}/models/{FAMILY}", "versionId": VERSION,
        "openSourceCategory": "GOOGLE_OWNED_OSS_WITH_GOOGLE_CHECKPOINT",
        "launchStage": "GA", "versionState": "VERSION_STATE_STABLE",
        "publisherModelTemplate": f"projects/{{project}}/locations/{{location}}/publishers/"
                                  f"{PUBLISHER}/models/{FAMILY}@{VERSION}",
        "supportedActions": {"deploy": option, "multiDeployVertex": {
            "multiDeployVertex": [option]}},
        "frameworks": ["vLLM"],
    }


def list_models(query: dict) -> dict:
    """publishers/*/models: the deployable open models this package carries, filtered by
    the SDK's filter (Hugging Face wildcard models and name patterns)."""
    text = (query.get("filter") or [""])[0]
    if "is_hf_wildcard(true)" in text:
        return {"publisherModels": []}  # the SDK then lists Hugging Face ids: none are local
    patterns = re.findall(r'=~"([^"]*)"', text)
    keep = True
    for pattern in patterns:
        try:
            keep = keep and any(re.fullmatch(pattern, s) for s in (FAMILY, VERSION, "Gemma 3"))
        except re.error as exc:
            raise errors.invalid(f"Invalid filter {text!r}: {exc}") from None
    return {"publisherModels": [publisher_model()] if keep else []}


class ModelGarden:
    """:deploy on the local Vertex AI: a Model Registry entry and an endpoint."""

    def __init__(self, store, registry):
        self.store = store
        self.registry = registry

    def deploy(self, parent: str, body: dict) -> dict:
        unknown = set(body) - {"publisherModelName", "huggingFaceModelId", "destination",
                               "modelConfig", "endpointConfig", "deployConfig"}
        if unknown:
            raise errors.invalid(f"Invalid JSON payload received. Unknown name "
                                 f"\"{sorted(unknown)[0]}\": Cannot find field.")
        # the REST binding carries destination in the path ({destination=projects/*/
        # locations/*}:deploy); a body may repeat it, but must not contradict it
        if body.get("destination", parent) != parent:
            raise errors.invalid(f"destination must be {parent!r}; got "
                                 f"{body.get('destination')!r}.")
        name = body.get("publisherModelName") or body.get("huggingFaceModelId")
        if not name:
            raise errors.invalid("One of publisher_model_name or hugging_face_model_id is "
                                 "required.")
        resolve(name, hugging_face=not body.get("publisherModelName"))
        model_config = body.get("modelConfig") or {}
        endpoint_config = body.get("endpointConfig") or {}
        deploy_config = body.get("deployConfig") or {}
        if not model_config.get("acceptEula"):
            # Gemma is released under the Gemma Terms of Use, which Model Garden asks you
            # to accept before it deploys (Google's tutorial: deploy(accept_eula=True)).
            raise errors.failed_precondition(
                f"{FAMILY}@{VERSION} is released under the Gemma Terms of Use "
                f"(https://ai.google.dev/gemma/terms); accept them to deploy it: "
                f"OpenModel(...).deploy(accept_eula=True).")
        if model_config.get("containerSpec"):
            raise errors.gcp_only("Deploying an open model with your own serving container "
                                  "(serving_container_image_uri)")
        if endpoint_config.get("privateServiceConnectConfig"):
            raise errors.gcp_only("A Private Service Connect endpoint")
        if deploy_config.get("dedicatedResources", {}).get("spot"):
            raise errors.gcp_only("Spot VMs for a deployment")
        option = _deploy_option()
        resources = validate_dedicated(deploy_config.get("dedicatedResources")
                                       or option["dedicatedResources"])
        display = model_config.get("modelDisplayName") or f"{FAMILY}-{VERSION}-mg"
        upload = self.registry.upload(parent, {"model": {
            "displayName": display, "containerSpec": option["containerSpec"],
            "artifactUri": option["artifactUri"],
            "labels": {"mg-source": "sdk"}}})
        model = upload["response"]["model"]
        model_id = model.rsplit("/", 1)[-1]
        endpoint_id, deployed_id, stamp = new_id(), new_id(), now()
        endpoint = f"{parent}/endpoints/{endpoint_id}"
        with self.store.lock:
            record = self.store.get("models", model_id)
            record["versions"][0].update(
                modelSourceInfo={"sourceType": "MODEL_GARDEN"},
                baseModelSource={"modelGardenSource": {
                    "publicModelName": f"publishers/{PUBLISHER}/models/{FAMILY}",
                    "versionId": VERSION}})
            self.store.put("models", model_id, record)
            self.store.put("endpoints", endpoint_id, {
                "name": endpoint, "labels": {}, "etag": new_id(),
                "displayName": endpoint_config.get("endpointDisplayName")
                or f"{FAMILY}-{VERSION}-mg-endpoint",
                "trafficSplit": {deployed_id: 100}, "createTime": stamp, "updateTime": stamp,
                "deployedModels": [{"id": deployed_id, "model": model, "modelVersionId": "1",
                                    "displayName": display, "createTime": stamp,
                                    "dedicatedResources": resources}]})
        self.registry.mark_deployed(parent, f"{model_id}@1", endpoint, deployed_id, True)
        from labkit.vertex import operations

        return operations.done(self.store, parent, "DeployOperationMetadata", "DeployResponse",
                               {"publisherModel": f"publishers/{PUBLISHER}/models/{FAMILY}"
                                                  f"@{VERSION}",
                                "endpoint": endpoint, "model": f"{model}@1"})


# ---- serving (vertex.serving.load hands Model Garden's vLLM container here)


def serves(model: dict) -> bool:
    """Whether a Model Registry entry is Google's vLLM container: those are answered here
    (for the model it loads, which must be the local one)."""
    return (model.get("containerSpec") or {}).get("imageUri", "").startswith(VLLM_PREFIX)


class VllmServer:
    """The vLLM container's /generate on the local Gemma: predict(instances, parameters)."""

    def __init__(self, model: dict):
        spec = model.get("containerSpec") or {}
        env = {e.get("name"): e.get("value") for e in spec.get("env") or []}
        loads = env.get("MODEL_ID") or next(
            (a.split("=", 1)[1] for a in spec.get("args") or [] if a.startswith("--model=")), "")
        if loads.lower().rstrip("/").rsplit("/", 1)[-1] != VERSION:
            raise errors.gcp_only(f"Serving {loads or 'this model'} with vLLM (the local "
                                  f"Vertex AI serves only {HF_ID})")
        self.engine = Engine()

    def predict(self, instances: list, parameters) -> list:
        if parameters:  # the container reads sampling parameters from each instance only
            raise errors.invalid("The vLLM serving container takes its sampling parameters "
                                 "(max_tokens, temperature, top_p, top_k, raw_response) in "
                                 "each instance, not in parameters.")
        configs = [self._config(i) for i in instances]  # every instance checked first
        out = []
        for instance, config in zip(instances, configs, strict=True):
            result = self.engine.generate([Turn("user", [{"text": instance["prompt"]}])],
                                          config)
            text = result["candidates"][0]["parts"][0]["text"]
            out.append(text if instance.get("raw_response") else
                       f"Prompt:\n{instance['prompt'].strip()}\nOutput:\n{text}")
        return out

    @staticmethod
    def _config(instance) -> Config:
        if not isinstance(instance, dict) or not isinstance(instance.get("prompt"), str):
            raise errors.invalid("Each instance needs a string prompt (the vLLM container's "
                                 "request: {\"prompt\": ..., \"max_tokens\": ...}).")
        unknown = set(instance) - INSTANCE_KEYS
        if unknown:
            raise errors.invalid(f"Unknown sampling parameter {sorted(unknown)[0]!r}; the "
                                 f"local vLLM takes {', '.join(sorted(INSTANCE_KEYS))}.")
        c = Config(max_output_tokens=16)  # vLLM's own default max_tokens
        try:
            c.max_output_tokens = _bounded(instance, "max_tokens", c.max_output_tokens, 1,
                                           MAX_TOKENS, int)
            c.temperature = _bounded(instance, "temperature", 1.0, 0.0, 2.0, float)
            c.top_p = _bounded(instance, "top_p", 1.0, 1e-9, 1.0, float)
            top_k = _bounded(instance, "top_k", -1, -1, 1000, int)  # vLLM: -1 is all
            c.top_k = 262_144 if top_k in (-1, 0) else top_k
            seed = instance.get("seed")
            c.seed = None if seed is None else _bounded(instance, "seed", 0, 0, 2**32 - 1, int)
        except InvalidArgument as exc:
            raise errors.invalid(exc.message) from None
        stop = instance.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise errors.invalid("stop must be a string or a list of strings.")
        c.stop_sequences = stop
        return c

    def close(self) -> None:
        pass


def _bounded(instance: dict, key: str, default, low, high, kind):
    value = instance.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            (kind is int and value != int(value)):
        raise InvalidArgument(f"{key} must be a{'n integer' if kind is int else ' number'}; "
                              f"got {value!r}.")
    if not low <= value <= high:
        raise InvalidArgument(f"{key} must be between {low} and {high}; got {value}.")
    return kind(value)

