"""Batch prediction jobs: run in a background thread of the services process.

Inputs: JSONL or CSV files on Cloud Storage (gs://, wildcards allowed) and BigQuery tables
(bq://project.dataset.table). Outputs, in Vertex's layout:
- gs://PREFIX/prediction-<model>-<time>/prediction.results-00000-of-00001 (JSON Lines)
  with lines {"instance": ..., "prediction": ...}, and
  prediction.errors_stats-00000-of-00001 with {"instance", "error"}, as Vertex names the
  shards it writes for custom models;
- bq://project -> dataset prediction_<model>_<time> with tables `predictions` and `errors`
  (the input columns plus `prediction`); bq://project.dataset.table -> that new table.
CSV rows and BigQuery rows become lists in column order unless instanceConfig says
otherwise (CSV numbers are parsed as numbers).
instanceConfig (instanceType object/array, includedFields, excludedFields, keyField) is
applied as Vertex applies it.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import traceback
from datetime import UTC, datetime

from labkit.storage import local_path, matching_files, split_uri
from labkit.storage.paths import bucket_meta_path
from labkit.vertex import errors, serving
from labkit.vertex.machines import validate_dedicated
from labkit.vertex.registry import Registry
from labkit.vertex.resources import matches_filter, page
from labkit.vertex.store import ResourceStore, new_id, now
from labkit.workspace import Workspace

TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
            "JOB_STATE_EXPIRED", "JOB_STATE_PARTIALLY_SUCCEEDED"}
DEFAULT_BATCH_SIZE = 64
LONG_POLL_S = 2.0  # a GET of a running job waits this long for it to finish


class Cancelled(Exception):
    pass


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _bq_table(uri: str) -> tuple[str, str, str]:
    m = re.fullmatch(r"bq://([^.]+)\.([^.]+)\.([^.]+)", uri or "")
    if not m:
        raise errors.invalid(f"BigQuery source {uri!r} must look like bq://project.dataset.table.")
    return m[1], m[2], m[3]


def _region(job: dict) -> str:
    return job["name"].split("/locations/", 1)[1].split("/", 1)[0]


class BatchJobs:
    def __init__(self, store: ResourceStore, registry: Registry, workspace: Workspace,
                 bigquery):
        self.store = store
        self.registry = registry
        self.workspace = workspace
        self.bigquery = bigquery  # labkit.vertex.bq.LocalBigQuery
        self.finished: dict[str, threading.Event] = {}
        self.cancel_requested: set[str] = set()
        for job in store.all("batchPredictionJobs"):  # jobs of a process that ended
            if job["state"] not in TERMINAL:
                job.update(state="JOB_STATE_FAILED", endTime=now(), error={
                    "code": 10, "message": "The local services stopped while the job ran."})
                store.put("batchPredictionJobs", job["name"].rsplit("/", 1)[-1], job)

    # ---- control plane
    def create(self, parent: str, body: dict) -> dict:
        if not body.get("displayName"):
            raise errors.invalid("BatchPredictionJob.display_name is required.")
        model_ref = (body.get("model") or "").rsplit("/models/", 1)[-1]
        if not model_ref:
            raise errors.gcp_only("Batch prediction without a Model resource")
        _, version = self.registry.resolve(parent, model_ref)
        serving.framework_of(version)
        source = body.get("inputConfig") or {}
        sink = body.get("outputConfig") or {}
        in_format, out_format = source.get("instancesFormat"), sink.get("predictionsFormat")
        if in_format not in ("jsonl", "csv", "bigquery"):
            raise errors.gcp_only(f"Batch prediction input format {in_format!r}") \
                if in_format in ("tf-record", "tf-record-gzip", "file-list") else \
                errors.invalid(f"Unsupported instances_format {in_format!r}.")
        if in_format == "bigquery":
            _bq_table((source.get("bigquerySource") or {}).get("inputUri"))
        elif not (source.get("gcsSource") or {}).get("uris"):
            raise errors.invalid("gcs_source.uris is required for jsonl and csv input.")
        if out_format not in ("jsonl", "bigquery"):
            raise errors.invalid(f"Unsupported predictions_format {out_format!r}.")
        if out_format == "jsonl" and not (sink.get("gcsDestination") or {}).get(
                "outputUriPrefix", "").startswith("gs://"):
            raise errors.invalid("gcs_destination.output_uri_prefix must be a gs:// URI.")
        if out_format == "bigquery" and not (sink.get("bigqueryDestination") or {}).get(
                "outputUri", "").startswith("bq://"):
            raise errors.invalid("bigquery_destination.output_uri must be a bq:// URI.")
        if body.get("generateExplanation") and not (
                (version.get("explanationSpec") or {}).get("parameters")
                or (body.get("explanationSpec") or {}).get("parameters")):
            raise errors.invalid("generate_explanation needs a model with an explanation_spec "
                                 "(or an explanation_spec on the batch prediction job).")
        job_id = new_id()
        job = {**body, "name": f"{parent}/batchPredictionJobs/{job_id}",
               "model": f"{parent}/models/{version['name'].split('/')[-1]}",
               "modelVersionId": version["versionId"], "state": "JOB_STATE_PENDING",
               "createTime": now(), "updateTime": now()}
        if body.get("dedicatedResources"):
            resources = dict(body["dedicatedResources"])
            checked = validate_dedicated({"machineSpec": resources.get("machineSpec"),
                                          "minReplicaCount": 1,
                                          "maxReplicaCount": resources.get("maxReplicaCount")
                                          or resources.get("startingReplicaCount") or 1})
            job["dedicatedResources"] = {**resources, "machineSpec": checked["machineSpec"]}
        self.store.put("batchPredictionJobs", job_id, job)
        self.finished[job_id] = threading.Event()
        threading.Thread(target=self._run, args=(parent, job_id, version), daemon=True,
                         name=f"batch-{job_id}").start()
        return job

    def _get(self, parent: str, job_id: str) -> dict:
        job = self.store.get("batchPredictionJobs", job_id) if job_id.isdigit() else None
        if job is None or not job["name"].startswith(parent + "/"):
            raise errors.not_found("BatchPredictionJob", f"{parent}/batchPredictionJobs/{job_id}")
        return job

    def get(self, parent: str, job_id: str) -> dict:
        job = self._get(parent, job_id)
        event = self.finished.get(job_id)
        if job["state"] not in TERMINAL and event is not None and event.wait(LONG_POLL_S):
            job = self._get(parent, job_id)
        return job

    def list(self, parent: str, query: dict) -> dict:
        found = [j for j in self.store.all("batchPredictionJobs")
                 if j["name"].startswith(parent + "/") and matches_filter(j, query.get("filter"))]
        return page(found, "batchPredictionJobs", query.get("pageSize"), query.get("pageToken"))

    def cancel(self, parent: str, job_id: str) -> dict:
        with self.store.lock:
            job = self._get(parent, job_id)
            if job["state"] not in TERMINAL:
                self.cancel_requested.add(job_id)
                job.update(state="JOB_STATE_CANCELLING", updateTime=now())
                self.store.put("batchPredictionJobs", job_id, job)
        return {}

    def delete(self, parent: str, job_id: str) -> dict:
        from labkit.vertex import operations

        job = self._get(parent, job_id)
        if job["state"] not in TERMINAL:
            raise errors.failed_precondition(
                f"BatchPredictionJob {job['name']} is running; cancel it before deleting it.")
        self.store.delete("batchPredictionJobs", job_id)
        return operations.done(self.store, job["name"], "DeleteOperationMetadata", None)

    def _update(self, job_id: str, **fields) -> dict:
        with self.store.lock:
            job = self.store.get("batchPredictionJobs", job_id)
            job.update(fields, updateTime=now())
            return self.store.put("batchPredictionJobs", job_id, job)

    # ---- the work
    def _run(self, parent: str, job_id: str, version: dict) -> None:
        predictor = None
        try:
            self._update(job_id, state="JOB_STATE_RUNNING", startTime=now())
            job = self.store.get("batchPredictionJobs", job_id)
            instances, rows = self._read(job)
            predictor = serving.load(version, self.workspace)
            size = int((job.get("manualBatchTuningParameters") or {}).get("batchSize")
                       or DEFAULT_BATCH_SIZE)
            results, failures, explanations = [], [], {}
            for start in range(0, len(instances), size):
                if job_id in self.cancel_requested:
                    raise Cancelled()
                chunk = instances[start:start + size]
                try:
                    predictions = predictor.predict(chunk, job.get("modelParameters"))
                    if len(predictions) != len(chunk):
                        raise errors.invalid(f"The model returned {len(predictions)} "
                                             f"predictions for {len(chunk)} instances.")
                    results.extend(zip(range(start, start + len(chunk)), predictions,
                                       strict=True))
                    if job.get("generateExplanation"):
                        explanations.update(enumerate(self._explain(
                            job, version, chunk, predictions, predictor), start))
                except errors.VertexError as exc:
                    failures.extend((i, exc.rpc_status, exc.message)
                                    for i in range(start, start + len(chunk)))
            info = self._write(job, version, instances, rows, results, failures,
                               explanations)
            stats = {"successfulCount": str(len(results)), "failedCount": str(len(failures)),
                     "incompleteCount": "0"}
            state = "JOB_STATE_SUCCEEDED" if results or not failures else "JOB_STATE_FAILED"
            extra = {} if state == "JOB_STATE_SUCCEEDED" else {"error": {
                "code": 3, "message": f"All {len(failures)} instances failed; see the errors "
                                      f"output. First error: {failures[0][2]}"}}
            self._update(job_id, state=state, endTime=now(), outputInfo=info,
                         completionStats=stats, **extra)
        except Cancelled:
            self._update(job_id, state="JOB_STATE_CANCELLED", endTime=now(),
                         error={"code": 1, "message": "CANCELED"})
        except errors.VertexError as exc:
            self._update(job_id, state="JOB_STATE_FAILED", endTime=now(),
                         error=exc.as_operation_error())
        except Exception as exc:  # noqa: BLE001 - a job failure must not kill the service
            traceback.print_exc()
            self._update(job_id, state="JOB_STATE_FAILED", endTime=now(),
                         error={"code": 13, "message": f"{type(exc).__name__}: {exc}"})
        finally:
            if predictor is not None:
                predictor.close()
            self.cancel_requested.discard(job_id)
            self.finished[job_id].set()

    @staticmethod
    def _explain(job: dict, version: dict, chunk: list, predictions: list, predictor) -> list:
        """generate_explanation: one attribution per instance, by the monitoring engine."""
        from labkit.vertex.monitoring import hooks

        parameters = job.get("modelParameters")
        return hooks.batch_explanations(version, chunk, predictions,
                                        serving.PredictFn(predictor, parameters),
                                        job.get("explanationSpec"))

    def _read(self, job: dict) -> tuple[list, list[dict] | None]:
        """(instances as sent to the model, BigQuery rows as dicts or None)."""
        source = job["inputConfig"]
        config = job.get("instanceConfig") or {}
        if source["instancesFormat"] == "bigquery":
            rows = self._read_bigquery(source["bigquerySource"]["inputUri"], _region(job))
            # BigQuery rows become arrays in column order unless instanceType says otherwise.
            config = {"instanceType": "array", **config}
            return [self._shape(dict(r), config) for r in rows], rows
        instances = []
        for uri in source["gcsSource"]["uris"]:
            for path in self._expand(uri):
                text = path.read_text()
                if source["instancesFormat"] == "jsonl":
                    for n, line in enumerate(text.splitlines(), 1):
                        if line.strip():
                            try:
                                instances.append(self._shape(json.loads(line), config))
                            except ValueError as exc:
                                raise errors.invalid(f"{uri} line {n} is not JSON: {exc}") \
                                    from None
                else:
                    reader = csv.reader(io.StringIO(text))
                    header = next(reader, None)
                    for row in reader:
                        if row:
                            values = [_number(v) for v in row]
                            instances.append(self._shape(dict(zip(header, values, strict=False)),
                                                         {"instanceType": "array", **config}))
        return instances, None

    @staticmethod
    def _shape(instance, config: dict):
        if not isinstance(instance, dict):
            return instance
        included = config.get("includedFields") or list(instance)
        excluded = set(config.get("excludedFields") or []) | (
            {config["keyField"]} if config.get("keyField") else set())
        fields = [f for f in included if f not in excluded]
        if config.get("instanceType") == "array":
            return [instance.get(f) for f in fields]
        return {f: instance.get(f) for f in fields}

    def _expand(self, uri: str):
        matched = matching_files(uri, self.workspace)
        if not matched:
            raise errors.invalid(f"No files match the batch prediction input {uri}." if "*"
                                 in uri else f"Batch prediction input {uri} does not exist.")
        return matched

    def _read_bigquery(self, uri: str, region: str) -> list[dict]:
        from labkit.vertex import bq

        return bq.read_rows(self.bigquery, *_bq_table(uri), region=region)

    def _write(self, job: dict, version: dict, instances: list, rows, results, failures,
               explanations: dict) -> dict:
        stamp = datetime.fromisoformat(job["createTime"].replace("Z", "+00:00")).astimezone(UTC)
        label = stamp.strftime("%Y_%m_%dT%H_%M_%S_") + f"{stamp.microsecond // 1000:03d}Z"
        sink = job["outputConfig"]
        if sink["predictionsFormat"] == "jsonl":
            prefix = sink["gcsDestination"]["outputUriPrefix"].rstrip("/")
            bucket, _ = split_uri(prefix + "/")
            if not bucket_meta_path(self.workspace, bucket).exists():
                raise errors.invalid(f"Output bucket gs://{bucket} does not exist.")
            folder_uri = f"{prefix}/prediction-{version['displayName']}-{label}"
            folder = local_path(folder_uri + "/", self.workspace)
            folder.mkdir(parents=True, exist_ok=True)
            # Vertex writes custom models' output as JSON Lines shards named
            # prediction.results-NNNNN-of-MMMMM and prediction.errors_stats-NNNNN-of-MMMMM.
            with open(folder / "prediction.results-00000-of-00001", "w") as out:
                for i, prediction in results:
                    line = {"instance": instances[i], "prediction": prediction}
                    if i in explanations:
                        line["explanation"] = explanations[i]
                    out.write(json.dumps(line) + "\n")
            with open(folder / "prediction.errors_stats-00000-of-00001", "w") as out:
                for i, status, message in failures:
                    out.write(json.dumps({"instance": instances[i], "error": {
                        "status": status, "message": message}}) + "\n")
            return {"gcsOutputDirectory": folder_uri}
        from labkit.vertex import bq

        source = job["inputConfig"]
        source_location = None
        if source["instancesFormat"] == "bigquery":
            project, dataset, _ = _bq_table(source["bigquerySource"]["inputUri"])
            source_location = bq.dataset_location(self.bigquery, project, dataset)
        return bq.write_predictions(self.bigquery, sink["bigqueryDestination"]["outputUri"],
                                    version, label, instances, rows, results, failures,
                                    region=_region(job), source_location=source_location)
