"""BigQuery ML models registered in the local Vertex AI Model Registry
(CREATE MODEL ... OPTIONS(model_registry = 'vertex_ai'); the options and their rules are in
labkit.bigquery.ml.vertex_registry, the docs it follows are named there). The services
wiring builds one VertexRegistration and hands it to BigQuery ML, so the dependency points
from Vertex AI to BigQuery, never back.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from labkit.bigquery.ml import export
from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.model import TrainedModel
from labkit.bigquery.ml.statements import ModelRef
from labkit.bigquery.ml.vertex_registry import region_of, vertex_model_id
from labkit.vertex import containers
from labkit.vertex import errors as vertex_errors


def _image(fmt: str) -> str:
    framework = export.CONTAINER_FRAMEWORK[fmt]
    version = containers.newest("prediction", framework)
    if version is None:
        raise MLError(f"No prebuilt {framework} prediction container is listed to serve the "
                      "registered model")
    return (f"us-docker.pkg.dev/vertex-ai/prediction/{framework}-cpu."
            f"{version.replace('.', '-')}:latest")


def _explanation_spec(model: TrainedModel) -> dict:
    """Sampled Shapley over the feature columns, from the training means (STRING features
    from an unseen category, i.e. no one-hot bit). Registered BigQuery ML models explain on
    their endpoints right after deployment: Google's sample deploys and calls
    endpoint.explain() without configuring anything (vertex-ai-samples,
    notebooks/community/model_registry/bqml_vertexai_model_registry.ipynb)."""
    inputs = {c["name"]: {"inputBaselines": ["" if c["kind"] == "string" else c["mean"]]}
              for c in model.encoder.columns}
    output = f"{model.label}_probs" if model.classifier else f"predicted_{model.label}"
    return {"parameters": {"sampledShapleyAttribution": {"pathCount": 10}},
            "metadata": {"inputs": inputs, "outputs": {output: {"outputTensorName": output}}}}


class VertexRegistration:
    """Registers BigQuery ML models in the Vertex Model Registry and removes them."""

    def __init__(self, registry, root: Path):
        self.registry = registry
        self.root = Path(root)        # exported artifacts of registered versions

    def register(self, ref: ModelRef, model: TrainedModel, resource: dict) -> dict:
        """Registers a new version; returns {"vertexAiModelId", "vertexAiModelVersion"}."""
        options = model.options
        model_id = vertex_model_id(ref, options)
        parent = f"projects/{ref.project}/locations/{region_of(resource.get('location', 'US'))}"
        # the display name is the Vertex model ID: Google's official sample finds the model
        # with Model.list(filter="display_name=<vertex_ai_model_id>")
        # (vertex-ai-samples notebooks/official/bigquery_ml/get_started_with_bqml_training)
        spec = {"displayName": model_id,
                "versionAliases": list(options.get("vertex_ai_model_version_aliases") or []),
                "labels": dict(resource.get("labels") or {})}
        if resource.get("description"):
            spec["description"] = resource["description"]
        folder = None
        try:
            fmt = export.format_of(model)
        except MLError:
            fmt = None                      # registered, not deployable
        store = self.registry.store
        with store.lock:
            existing = store.get("models", model_id)
            if fmt is not None:
                version = str(existing["nextVersion"]) if existing else "1"
                folder = self.root / ref.project / model_id / version
                if folder.exists():
                    shutil.rmtree(folder)
                export.export(model, folder)
                spec.update(artifactUri=str(folder), containerSpec={"imageUri": _image(fmt)})
                if fmt == export.TF_SAVED_MODEL and model.supervised:
                    spec["explanationSpec"] = _explanation_spec(model)
            body = {"model": spec}
            if existing:
                body["parentModel"] = f"{parent}/models/{model_id}"
                # the retrained model is what BigQuery ML now serves: make it the default
                spec["versionAliases"] = ["default"] + spec["versionAliases"]
            else:
                body["modelId"] = model_id
            try:
                answer = self.registry.upload(parent, body)["response"]
            except vertex_errors.VertexError as exc:
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
                raise MLError(f"Registering the model in the Vertex AI Model Registry failed: "
                              f"{exc.message}") from None
            record = store.get("models", model_id)
            for entry in record["versions"]:
                if entry["versionId"] == answer["modelVersionId"]:
                    entry["modelSourceInfo"] = {"sourceType": "BQML"}
            # which BigQuery model each version came from (the record, not the API resource)
            record.setdefault("bigqueryModels", {})[answer["modelVersionId"]] = str(ref)
            store.put("models", model_id, record)
        return {"vertexAiModelId": model_id, "vertexAiModelVersion": answer["modelVersionId"]}

    def _registered(self, ref: ModelRef, resource: dict) -> tuple[str, dict, list] | None:
        """(Vertex model ID, its record, the versions this BigQuery model registered)."""
        runs = resource.get("trainingRuns") or []
        model_id = next((r.get("vertexAiModelId") for r in runs if r.get("vertexAiModelId")),
                        None)
        record = self.registry.store.get("models", model_id) if model_id else None
        if record is None:
            return None
        sources = record.get("bigqueryModels") or {}
        return model_id, record, [v for v in record["versions"]
                                  if sources.get(v["versionId"]) == str(ref)]

    def check_removable(self, ref: ModelRef, resource: dict) -> None:
        """Refuses, before anything is deleted, to remove a deployed version (the registry
        refuses to delete a deployed model)."""
        found = self._registered(ref, resource)
        for version in (found[2] if found else []):
            if version.get("deployedModels"):
                raise MLError(f"The model {ref} is registered in the Vertex AI Model Registry "
                              f"as {found[0]}@{version['versionId']}, which is deployed to an "
                              "endpoint; undeploy it first.", "invalid")

    def unregister(self, ref: ModelRef, resource: dict) -> None:
        """DROP MODEL: the registry versions this BigQuery model registered go too."""
        store = self.registry.store
        with store.lock:
            self.check_removable(ref, resource)
            found = self._registered(ref, resource)
            if found is None:
                return
            model_id, record, mine = found
            sources = record.get("bigqueryModels") or {}
            record["versions"] = [v for v in record["versions"] if v not in mine]
            for version in mine:
                sources.pop(version["versionId"], None)
            if record["versions"]:
                if not any("default" in v.get("versionAliases", []) for v in record["versions"]):
                    record["versions"][-1]["versionAliases"] = \
                        ["default"] + record["versions"][-1].get("versionAliases", [])
                store.put("models", model_id, record)
            else:
                store.delete("models", model_id)
        for version in mine:
            shutil.rmtree(self.root / ref.project / model_id / version["versionId"],
                          ignore_errors=True)
