"""TrainingPipelines: custom training (CustomTrainingJob, CustomPythonPackageTrainingJob,
CustomContainerTrainingJob) runs a backing CustomJob, then uploads modelToUpload.

Store collection "trainingPipelines" (vertex/trainingPipelines/<id>.json) holds every
TrainingPipeline, whoever runs it: a pipeline whose trainingTaskDefinition names an AutoML
schema (".../automl_...") is handed to labkit.vertex.automl.start_training_pipeline, which
stores and updates it in that collection itself. get/list/cancel/delete here serve both;
cancel sets state PIPELINE_STATE_CANCELLING in the stored resource, which the runner that
owns the pipeline watches for.

The model is uploaded from <baseOutputDirectory>/model (AIP_MODEL_DIR), as Vertex does.
A managed dataset (inputDataConfig) is split and exported first (see datasets).
"""

from __future__ import annotations

import re

from labkit.vertex import errors
from labkit.vertex.registry import Registry
from labkit.vertex.store import ResourceStore, new_id
from labkit.vertex.training import datasets
from labkit.vertex.training.custom_jobs import CustomJobs, validate_job_spec
from labkit.vertex.training.job_table import JobCollection, JobTable

CUSTOM_TASK = "custom_task_1.0.0.yaml"


def camel_keys(value):
    """trainingTaskInputs is a Struct: the SDK writes its field names in snake_case, which
    Vertex accepts as it accepts camelCase; the job engine reads camelCase."""
    if isinstance(value, dict):
        return {re.sub(r"_([a-z])", lambda m: m[1].upper(), k): camel_keys(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


def _is_custom(pipeline: dict) -> bool:
    return pipeline.get("trainingTaskDefinition", "").endswith(CUSTOM_TASK)


class TrainingPipelines(JobCollection):
    def __init__(self, store: ResourceStore, registry: Registry, custom_jobs: CustomJobs,
                 bigquery):
        self.store = store
        self.bigquery = bigquery  # labkit.vertex.bq.LocalBigQuery (managed datasets' tables)
        self.registry = registry
        self.custom_jobs = custom_jobs
        self.table = JobTable(store, "trainingPipelines", "TrainingPipeline", "PIPELINE")
        self.table.recover(owned=_is_custom)

    def create(self, parent: str, body: dict) -> dict:
        definition = body.get("trainingTaskDefinition") or ""
        if "/automl_" in definition:
            return self._automl(parent, body)
        if not definition.endswith(CUSTOM_TASK):
            raise errors.gcp_only(f"Training pipelines with training_task_definition "
                                  f"{definition!r}")
        if not body.get("displayName"):
            raise errors.invalid("TrainingPipeline.display_name is required.")
        inputs = camel_keys(body.get("trainingTaskInputs") or {})
        spec = validate_job_spec({k: v for k, v in inputs.items()
                                  if k in ("workerPoolSpecs", "baseOutputDirectory")})
        model = body.get("modelToUpload")
        if model is not None and not spec.get("baseOutputDirectory"):
            raise errors.invalid("base_output_directory is required to upload a model.")
        data_env = datasets.export(self.store, parent, body["inputDataConfig"], self.bigquery) \
            if body.get("inputDataConfig") else {}
        pipeline_id = new_id()
        self.table.add(pipeline_id, {**body, "name": self.table.name(parent, pipeline_id)})
        job = self.custom_jobs.create(
            parent, {"displayName": f"{body['displayName']}-custom-job", "jobSpec": spec,
                     "labels": body.get("labels") or {}},
            on_end=lambda job: self._job_ended(parent, pipeline_id, job), extra_env=data_env)
        with self.store.lock:  # the job may already have ended and finished the pipeline
            fields = {"trainingTaskMetadata": {"backingCustomJob": job["name"]}}
            if self.store.get("trainingPipelines", pipeline_id)["state"] not in \
                    self.table.terminal:
                fields["state"] = self.table.state("RUNNING")
            return self.table.update(pipeline_id, **fields)

    def _automl(self, parent: str, body: dict) -> dict:
        try:
            from labkit.vertex.automl import start_training_pipeline
        except ImportError:
            raise errors.gcp_only("AutoML training (an AutoML training_task_definition)") \
                from None
        return start_training_pipeline(self.store, self.registry, parent, body, self.bigquery)

    def _job_ended(self, parent: str, pipeline_id: str, job: dict) -> None:
        state = job["state"].rsplit("_", 1)[-1]
        message = (job.get("error") or {}).get("message", "")
        if state != "SUCCEEDED":
            self.table.finish(pipeline_id, state, message)
            return
        pipeline = self.store.get("trainingPipelines", pipeline_id)
        if self.table.cancel_requested(pipeline_id):
            self.table.finish(pipeline_id, "CANCELLED")
            return
        model = pipeline.get("modelToUpload")
        if model is None:
            self.table.finish(pipeline_id, "SUCCEEDED")
            return
        base = job["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"].rstrip("/")
        spec = {**model, "artifactUri": model.get("artifactUri") or f"{base}/model"}
        upload = {"model": spec}
        for key in ("parentModel", "modelId"):
            if pipeline.get(key):
                upload[key] = pipeline[key]
        try:
            answer = self.registry.upload(parent, upload)["response"]
        except errors.VertexError as exc:
            self.table.finish(pipeline_id, "FAILED", f"Training succeeded but the model upload "
                                                     f"failed: {exc.message}")
            return
        self.table.finish(pipeline_id, "SUCCEEDED", modelToUpload={
            **spec, "name": answer["model"], "versionId": answer["modelVersionId"]})

    def cancel(self, parent, pipeline_id):
        answer = self.table.cancel(parent, pipeline_id)
        backing = (self.table.load(parent, pipeline_id).get("trainingTaskMetadata") or {}) \
            .get("backingCustomJob")
        if backing:
            job_id = backing.rsplit("/", 1)[-1]
            try:
                self.custom_jobs.cancel(parent, job_id)
            except errors.VertexError:
                pass  # it already ended; _job_ended sees the cancel request
        return answer

