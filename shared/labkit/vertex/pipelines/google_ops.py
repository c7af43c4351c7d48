"""Google Cloud Pipeline Components, carried out against the local BigQuery and Vertex AI.

GCPC ops are container components whose launchers call Google's hostnames directly. Here
each supported launcher's work is done with the real client libraries (pointed at the local
services by launch.py) and its outputs are written the way the launcher writes them:
the same artifact types, URIs and metadata, and the gcp_resources output parameter.
"""

from __future__ import annotations

import json
import os
import re
import uuid

PREFIX = "google_cloud_pipeline_components.container.v1."
# launcher module -> (component name, handler name)
SUPPORTED = {
    PREFIX + "bigquery.query_job.launcher": ("BigqueryQueryJobOp", "bigquery_query"),
    PREFIX + "model.upload_model.launcher": ("ModelUploadOp", "model_upload"),
    PREFIX + "endpoint.create_endpoint.launcher": ("EndpointCreateOp", "endpoint_create"),
    PREFIX + "endpoint.deploy_model.launcher": ("ModelDeployOp", "model_deploy"),
    PREFIX + "batch_prediction_job.launcher": ("ModelBatchPredictOp", "batch_predict"),
    PREFIX + "custom_job.launcher": ("CustomTrainingJobOp", "custom_job"),
}


def vertex_uri(location: str, resource_name: str) -> str:
    return f"https://{location}-aiplatform.googleapis.com/v1/{resource_name}"


def bq_table_uri(project: str, dataset: str, table: str) -> str:
    return f"https://www.googleapis.com/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}"


class Task:
    def __init__(self, executor_input: dict):
        self.input = executor_input
        self.params = executor_input["inputs"].get("parameterValues", {})
        self.artifacts = executor_input["inputs"].get("artifacts", {})
        self.output = {"artifacts": {}, "parameterValues": {}}

    def param(self, name: str, default=None):
        value = self.params.get(name, default)
        return default if value in ("", None) else value

    def artifact(self, name: str) -> dict | None:
        found = self.artifacts.get(name, {}).get("artifacts", [])
        return found[0] if found else None

    def set_artifact(self, name: str, uri: str, metadata: dict) -> None:
        declared = self.input["outputs"].get("artifacts", {}).get(name)
        if not declared:
            return
        artifact = dict(declared["artifacts"][0], uri=uri, metadata=metadata)
        self.output["artifacts"][name] = {"artifacts": [artifact]}

    def set_resource(self, resource_type: str, uri: str) -> None:
        self.output["parameterValues"]["gcp_resources"] = json.dumps(
            {"resources": [{"resourceType": resource_type, "resourceUri": uri}]})

    def write(self) -> None:
        out = self.input["outputs"]
        path = out["outputFile"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(self.output, f)
        resources = self.output["parameterValues"].get("gcp_resources")
        target = out.get("parameters", {}).get("gcp_resources", {}).get("outputFile")
        if resources and target:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as f:
                f.write(resources)


def _location(task: Task) -> str:
    return task.param("location") or os.environ.get("CLOUD_ML_REGION", "us-central1")


def bigquery_query(task: Task) -> None:
    from google.cloud import bigquery

    project = task.param("project") or os.environ["GOOGLE_CLOUD_PROJECT"]
    client = bigquery.Client(project=project, location=task.param("location"))
    config = dict(task.param("job_configuration_query", {}) or {})
    destination = config.get("destinationTable") or config.get("destination_table")
    job_config = bigquery.QueryJobConfig(labels=task.param("labels", {}) or {})
    if destination:
        job_config.destination = bigquery.TableReference.from_api_repr(
            {"projectId": destination.get("projectId", project), **destination})
        job_config.write_disposition = config.get("writeDisposition") or config.get(
            "write_disposition") or "WRITE_EMPTY"
    else:
        # BigQuery writes an unnamed query's result to an anonymous dataset, one per
        # location (a dataset has one location; a US query cannot write into a regional one).
        where = re.sub(r"[^a-z0-9]", "_", (task.param("location") or "US").lower())
        dataset = client.create_dataset(f"_pipeline_results_{where}", exists_ok=True)
        job_config.destination = dataset.table(f"anon{uuid.uuid4().hex}")
    parameters = task.param("query_parameters", []) or []
    if parameters:
        job_config.query_parameters = [
            bigquery.ScalarQueryParameter.from_api_repr(p) for p in parameters]
    job = client.query(task.param("query") or config.get("query", {}).get("query", ""),
                        job_config=job_config)
    job.result()
    table = job_config.destination
    task.set_artifact("destination_table", bq_table_uri(table.project, table.dataset_id,
                                                        table.table_id),
                      {"projectId": table.project, "datasetId": table.dataset_id,
                       "tableId": table.table_id})
    task.set_resource("BigQueryJob", f"https://www.googleapis.com/bigquery/v2/projects/"
                                     f"{project}/jobs/{job.job_id}?location={job.location}")


def model_upload(task: Task) -> None:
    from google.cloud import aiplatform

    source = task.artifact("unmanaged_container_model")
    if source is None:
        raise ValueError("ModelUploadOp needs unmanaged_container_model (an importer of "
                         "google.UnmanagedContainerModel with containerSpec.imageUri).")
    spec = source.get("metadata", {}).get("containerSpec", {})
    if not spec.get("imageUri"):
        raise ValueError("unmanaged_container_model.metadata.containerSpec.imageUri is required.")
    parent = task.artifact("parent_model")
    model = aiplatform.Model.upload(
        display_name=task.param("display_name"), description=task.param("description"),
        artifact_uri=source.get("uri") or None, serving_container_image_uri=spec["imageUri"],
        serving_container_command=spec.get("command"), serving_container_args=spec.get("args"),
        serving_container_predict_route=spec.get("predictRoute"),
        serving_container_health_route=spec.get("healthRoute"),
        parent_model=parent["metadata"]["resourceName"] if parent else None,
        version_aliases=task.param("version_aliases"), labels=task.param("labels"),
        project=task.param("project"), location=_location(task))
    task.set_artifact("model", vertex_uri(_location(task), model.resource_name),
                      {"resourceName": model.resource_name})
    task.set_resource("Model", vertex_uri(_location(task), model.versioned_resource_name))


def endpoint_create(task: Task) -> None:
    from google.cloud import aiplatform

    endpoint = aiplatform.Endpoint.create(
        display_name=task.param("display_name"), description=task.param("description"),
        labels=task.param("labels"), project=task.param("project"), location=_location(task))
    uri = vertex_uri(_location(task), endpoint.resource_name)
    task.set_artifact("endpoint", uri, {"resourceName": endpoint.resource_name})
    task.set_resource("Endpoint", uri)


def model_deploy(task: Task) -> None:
    from google.cloud import aiplatform

    endpoint_name = task.artifact("endpoint")["metadata"]["resourceName"]
    model_name = task.artifact("model")["metadata"]["resourceName"]
    location = endpoint_name.split("/")[3]
    endpoint = aiplatform.Endpoint(endpoint_name, location=location)
    machine = task.param("dedicated_resources_machine_type")
    endpoint.deploy(
        model=aiplatform.Model(model_name, location=location),
        # a KFP struct carries numbers as floats; DeployModelRequest wants whole percents
        traffic_split={k: int(v) for k, v in (task.param("traffic_split") or {}).items()}
        or None,
        machine_type=machine,
        min_replica_count=int(task.param("dedicated_resources_min_replica_count", 0) or 0)
        or int(task.param("automatic_resources_min_replica_count", 1) or 1),
        max_replica_count=int(task.param("dedicated_resources_max_replica_count", 0) or 0)
        or None,
        service_account=task.param("service_account"))
    task.set_resource("DeployModel", vertex_uri(location, endpoint_name))


def batch_predict(task: Task) -> None:
    from google.cloud import aiplatform

    model = task.artifact("model")
    if model is None:
        raise ValueError("ModelBatchPredictOp needs a model artifact on the local Vertex AI.")
    location = _location(task)
    job = aiplatform.BatchPredictionJob.create(
        job_display_name=task.param("job_display_name"),
        model_name=model["metadata"]["resourceName"],
        instances_format=task.param("instances_format", "jsonl"),
        predictions_format=task.param("predictions_format", "jsonl"),
        gcs_source=task.param("gcs_source_uris") or None,
        bigquery_source=task.param("bigquery_source_input_uri"),
        gcs_destination_prefix=task.param("gcs_destination_output_uri_prefix"),
        bigquery_destination_prefix=task.param("bigquery_destination_output_uri"),
        machine_type=task.param("machine_type"),
        starting_replica_count=int(task.param("starting_replica_count", 0) or 0) or None,
        max_replica_count=int(task.param("max_replica_count", 0) or 0) or None,
        labels=task.param("labels"), project=task.param("project"), location=location,
        sync=True)
    info = job.to_dict().get("outputInfo", {})
    metadata = {"resourceName": job.resource_name}
    if info.get("gcsOutputDirectory"):
        metadata["gcsOutputDirectory"] = info["gcsOutputDirectory"]
        task.set_artifact("gcs_output_directory", info["gcsOutputDirectory"], {})
    if info.get("bigqueryOutputTable"):
        dataset = info["bigqueryOutputDataset"].removeprefix("bq://")
        project, dataset_id = dataset.split(".", 1)
        metadata.update(bigqueryOutputTable=info["bigqueryOutputTable"],
                        bigqueryOutputDataset=info["bigqueryOutputDataset"])
        task.set_artifact("bigquery_output_table",
                          bq_table_uri(project, dataset_id, info["bigqueryOutputTable"]),
                          {"projectId": project, "datasetId": dataset_id,
                           "tableId": info["bigqueryOutputTable"]})
    task.set_artifact("batchpredictionjob", vertex_uri(location, job.resource_name), metadata)
    task.set_resource("BatchPredictionJob", vertex_uri(location, job.resource_name))


def custom_job(task: Task) -> None:
    from google.cloud import aiplatform

    job = aiplatform.CustomJob(
        display_name=task.param("display_name"),
        worker_pool_specs=task.param("worker_pool_specs"),
        base_output_dir=task.param("base_output_directory"),
        labels=task.param("labels"), project=task.param("project"), location=_location(task))
    job.run(service_account=task.param("service_account"), sync=True)
    task.set_resource("CustomJob", vertex_uri(_location(task), job.resource_name))


def run(module: str, executor_input_file: str) -> None:
    with open(executor_input_file) as f:
        task = Task(json.load(f))
    _, handler = SUPPORTED[module]
    globals()[handler](task)
    task.write()
