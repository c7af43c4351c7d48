"""The Model Registry: models, their versions and aliases, and model evaluations.

One record per model (vertex/models/<id>.json) holds every version; the API's Model
resource is one version of it. `ID` means the version holding the "default" alias;
`ID@3` and `ID@champion` name a version by id or alias.
"""

from __future__ import annotations

import re

from labkit.vertex import errors, operations
from labkit.vertex.resources import apply_mask, matches_filter, page
from labkit.vertex.serving import check_upload
from labkit.vertex.store import ResourceStore, new_id, now

ALIAS = re.compile(r"[a-z][a-z0-9-]{0,126}[a-z0-9]|[a-z]")
UPLOAD_FIELDS = ("displayName", "description", "versionDescription", "labels", "containerSpec",
                 "artifactUri", "explanationSpec", "predictSchemata", "metadataSchemaUri",
                 "metadata", "encryptionSpec", "pipelineJob")
PATCHABLE = {"displayName", "description", "versionDescription", "labels", "explanationSpec"}


class Registry:
    def __init__(self, store: ResourceStore):
        self.store = store

    # ---- lookup
    def _record(self, model_id: str, name: str) -> dict:
        # generated ids are numbers; an upload's modelId (and BigQuery ML's
        # vertex_ai_model_id) may be up to 63 of [a-z0-9_-], not starting with - (REST
        # reference, UploadModelRequest.model_id)
        known = model_id.isdigit() or re.fullmatch(r"[a-z_][a-z0-9_-]{0,62}", model_id)
        record = self.store.get("models", model_id) if known else None
        if record is None:
            raise errors.not_found("Model", name)
        return record

    def resolve(self, parent: str, ref: str) -> tuple[dict, dict]:
        """(record, version) for 'ID', 'ID@2' or 'ID@alias'."""
        name = f"{parent}/models/{ref}"
        model_id, _, version = ref.partition("@")
        record = self._record(model_id, name)
        wanted = version or "default"
        for v in record["versions"]:
            if v["versionId"] == wanted or wanted in v.get("versionAliases", []):
                return record, v
        raise errors.not_found("Model", name)

    def get(self, parent: str, ref: str) -> dict:
        return self.resolve(parent, ref)[1]

    # ---- upload
    def upload(self, parent: str, body: dict) -> dict:
        spec = body.get("model") or {}
        if not spec.get("displayName"):
            raise errors.invalid("Model.display_name is required.")
        check_upload(spec, self.store.workspace)
        aliases = list(spec.get("versionAliases") or [])
        for alias in aliases:
            if not ALIAS.fullmatch(alias) or alias.isdigit():
                raise errors.invalid(f"Invalid version alias {alias!r}: aliases are lower case "
                                     f"letters, digits and hyphens, starting with a letter.")
        with self.store.lock:
            parent_model = body.get("parentModel")
            if parent_model:
                model_id = parent_model.rsplit("/", 1)[-1].partition("@")[0]
                record = self._record(model_id, parent_model)
                version_id = str(record["nextVersion"])
            else:
                model_id = body.get("modelId") or new_id()
                if self.store.get("models", model_id):
                    raise errors.VertexError("ALREADY_EXISTS",
                                             f"Model {parent}/models/{model_id} already exists.")
                record = {"id": model_id, "parent": parent, "versions": [], "nextVersion": 1,
                          "evaluations": [], "createTime": now()}
                version_id = "1"
                if "default" not in aliases:
                    aliases.append("default")  # the first version is always the default
            stamp = now()
            version = {
                "name": f"{parent}/models/{model_id}", "versionId": version_id,
                **{k: spec[k] for k in UPLOAD_FIELDS if k in spec},
                "versionAliases": [], "createTime": record["createTime"], "updateTime": stamp,
                "versionCreateTime": stamp, "versionUpdateTime": stamp, "etag": new_id(),
                "supportedDeploymentResourcesTypes": ["DEDICATED_RESOURCES"],
                "supportedInputStorageFormats": ["jsonl", "csv", "bigquery"],
                "supportedOutputStorageFormats": ["jsonl", "bigquery"],
                "modelSourceInfo": {"sourceType": "CUSTOM"},
            }
            record["versions"].append(version)
            record["nextVersion"] = int(version_id) + 1
            self._move_aliases(record, version, aliases)
            self.store.put("models", model_id, record)
        return operations.done(self.store, f"{parent}/models/{model_id}",
                               "UploadModelOperationMetadata", "UploadModelResponse",
                               {"model": f"{parent}/models/{model_id}",
                                "modelVersionId": version_id})

    @staticmethod
    def _move_aliases(record: dict, version: dict, aliases: list[str]) -> None:
        """An alias names one version of a model: adding it here takes it from the other."""
        for other in record["versions"]:
            if other is not version:
                other["versionAliases"] = [a for a in other.get("versionAliases", [])
                                           if a not in aliases]
        version["versionAliases"] = sorted(set(version.get("versionAliases", [])) | set(aliases),
                                           key=lambda a: (a != "default", a))

    # ---- list, versions, aliases, update
    def list(self, parent: str, query: dict) -> dict:
        defaults = []
        for record in self.store.all("models"):
            if record["parent"] != parent:
                continue
            version = next((v for v in record["versions"]
                            if "default" in v.get("versionAliases", [])), None)
            if version and matches_filter(version, query.get("filter")):
                defaults.append(version)
        return page(defaults, "models", query.get("pageSize"), query.get("pageToken"))

    def list_versions(self, parent: str, ref: str, query: dict) -> dict:
        record, _ = self.resolve(parent, ref.partition("@")[0])
        versions = [v for v in record["versions"] if matches_filter(v, query.get("filter"))]
        return page(versions, "models", query.get("pageSize"), query.get("pageToken"))

    def merge_aliases(self, parent: str, ref: str, body: dict) -> dict:
        with self.store.lock:
            record, version = self.resolve(parent, ref)
            add = [a for a in body.get("versionAliases", []) if not a.startswith("-")]
            remove = [a[1:] for a in body.get("versionAliases", []) if a.startswith("-")]
            for alias in add:
                if not ALIAS.fullmatch(alias) or alias.isdigit():
                    raise errors.invalid(f"Invalid version alias {alias!r}.")
            if "default" in remove:
                raise errors.invalid("The default alias cannot be removed; add it to another "
                                     "version instead.")
            self._move_aliases(record, version, add)
            version["versionAliases"] = [a for a in version["versionAliases"]
                                         if a not in remove]
            version["versionUpdateTime"] = version["updateTime"] = now()
            self.store.put("models", record["id"], record)
            return version

    def patch(self, parent: str, ref: str, body: dict, mask: str | None) -> dict:
        with self.store.lock:
            record, version = self.resolve(parent, ref)
            apply_mask(version, body, mask, PATCHABLE)
            version["updateTime"] = now()
            self.store.put("models", record["id"], record)
            return version

    # ---- delete
    def delete(self, parent: str, ref: str, version_only: bool = False) -> dict:
        with self.store.lock:
            model_id, _, wanted = ref.partition("@")
            if version_only and not wanted:
                raise errors.invalid(f"deleteVersion needs a version: {parent}/models/{ref}"
                                     f"@VERSION.")
            record = self._record(model_id, f"{parent}/models/{ref}")
            if wanted:
                _, version = self.resolve(parent, ref)
                targets = [version]
                if "default" in version["versionAliases"] and len(record["versions"]) > 1:
                    raise errors.failed_precondition(
                        f"Model version {parent}/models/{ref} is the default version; move "
                        f"the default alias to another version before deleting it.")
            else:
                targets = list(record["versions"])
            for version in targets:
                if version.get("deployedModels"):
                    endpoints = ", ".join(d["endpoint"] for d in version["deployedModels"])
                    raise errors.failed_precondition(
                        f"The model {parent}/models/{model_id}@{version['versionId']} has "
                        f"been deployed on endpoint(s) {endpoints}. Undeploy it before "
                        f"deleting the model.")
            record["versions"] = [v for v in record["versions"] if v not in targets]
            if record["versions"]:
                self.store.put("models", model_id, record)
            else:
                self.store.delete("models", model_id)
        return operations.done(self.store, f"{parent}/models/{model_id}",
                               "DeleteOperationMetadata", None)

    # ---- deployments and evaluations (written by other rooms)
    def mark_deployed(self, parent: str, ref: str, endpoint: str, deployed_id: str,
                      deployed: bool) -> None:
        with self.store.lock:
            record, version = self.resolve(parent, ref)
            entries = [d for d in version.get("deployedModels", [])
                       if d["deployedModelId"] != deployed_id]
            if deployed:
                entries.append({"endpoint": endpoint, "deployedModelId": deployed_id})
            version["deployedModels"] = entries
            if not entries:
                version.pop("deployedModels")
            self.store.put("models", record["id"], record)

    def add_evaluation(self, parent: str, ref: str, evaluation: dict) -> dict:
        """Stores a ModelEvaluation (metrics, metricsSchemaUri, ...) on a model version."""
        with self.store.lock:
            record, version = self.resolve(parent, ref)
            eval_id = new_id()
            evaluation = {**evaluation, "createTime": now(),
                          "name": f"{version['name']}/evaluations/{eval_id}"}
            record["evaluations"].append({**evaluation, "_version": version["versionId"]})
            self.store.put("models", record["id"], record)
            return evaluation

    def evaluations(self, parent: str, ref: str, query: dict) -> dict:
        record, version = self.resolve(parent, ref)
        found = [{k: v for k, v in e.items() if not k.startswith("_")}
                 for e in record["evaluations"] if e["_version"] == version["versionId"]]
        return page(found, "modelEvaluations", query.get("pageSize"), query.get("pageToken"))

    def evaluation(self, parent: str, ref: str, eval_id: str) -> dict:
        for evaluation in self.evaluations(parent, ref, {})["modelEvaluations"]:
            if evaluation["name"].endswith(f"/evaluations/{eval_id}"):
                return evaluation
        raise errors.not_found("ModelEvaluation", f"{parent}/models/{ref}/evaluations/{eval_id}")
