"""Model Monitoring v2: ModelMonitor, its ModelMonitoringJobs, their stats and alerts.

The resources of Vertex AI's v1beta1 ModelMonitoringService (what the SDK's
vertexai.resources.preview.ml_monitoring sends): a ModelMonitor names a model version in the
Model Registry, its schema (feature and prediction fields) and default objective, baseline
(training dataset), output and notification; a ModelMonitoringJob compares a target dataset
with the baseline once, in a background thread, and records one data point per field and
objective, which searchModelMonitoringStats / searchModelMonitoringAlerts return.

Anomalies are "emailed" and logged as v1 keeps them locally (see _notify). Drift is measured
with the engine v1 uses (labkit.vertex.monitoring.stats): L-infinity or
Jensen-Shannon divergence for categorical fields, Jensen-Shannon divergence for numeric
ones (the metrics the SDK accepts), with the objective's thresholds (per field, then the
default for the field's kind, then stats.DEFAULT_THRESHOLD).

Datasets read locally: BigQuery tables and queries, CSV / JSONL files on Cloud Storage,
managed tabular datasets, a batch prediction job's output (batch_prediction_output) and
endpoints' request-response logging tables (vertex_endpoint_logs; their logging_time is the
timestamp), with a timestamp_field and a time_interval or time_offset (a window ending
`offset` before the run) filtering the rows.
Schedules (create_model_monitoring_job_request) run jobs on their cron through the
pipelines' scheduler (labkit.vertex.pipelines.schedules).
What runs only on Google is refused when the job is created (501): TFRecord files and the
feature-attribution objective.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta

from labkit.vertex import errors, operations
from labkit.vertex.monitoring import stats, training_data
from labkit.vertex.resources import page
from labkit.vertex.store import ResourceStore, new_id, now
from labkit.workspace import Workspace

MONITORS, JOBS = "modelMonitors", "modelMonitoringJobs"
BETA = "type.googleapis.com/google.cloud.aiplatform.v1beta1."
FEATURE_DRIFT, OUTPUT_DRIFT = "raw-feature-drift", "prediction-output-drift"
ATTRIBUTION = "feature-attribution"
ID = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
NUMERIC_TYPES = {"float", "double", "integer", "int", "number"}
METRICS = {"l_infinity", "jensen_shannon_divergence"}
GCS_FORMATS = {0: "csv", 1: "csv", 2: "tf-record", 3: "jsonl", "CSV": "csv",
               "TF_RECORD": "tf-record", "JSONL": "jsonl", "DATA_FORMAT_UNSPECIFIED": "csv"}
PATCHABLE = {"displayName", "trainingDataset", "modelMonitoringSchema", "tabularObjective",
             "notificationSpec", "outputSpec", "explanationSpec"}


def _operation(store: ResourceStore, name: str, metadata: str, response: str | None,
               body: dict | None = None) -> dict:
    """A done operation whose Any types name the v1beta1 messages (this service is v1beta1)."""
    op = operations.done(store, name, metadata, response, body)
    op["metadata"]["@type"] = BETA + metadata
    if response:
        op["response"]["@type"] = BETA + response
    return op


def _time(stamp) -> datetime | None:
    """A timestamp (RFC 3339 text, a datetime, BigQuery's "... UTC" text) as an aware
    datetime; one without a zone is UTC."""
    if stamp is None or stamp == "":
        return None
    if not isinstance(stamp, datetime):
        stamp = datetime.fromisoformat(str(stamp).replace("Z", "+00:00").replace(" UTC", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _duration(text: str, what: str) -> timedelta:
    """TimeOffset's offset and window: a number and a unit, "2h", "1d", "30m", "1w"."""
    m = re.fullmatch(r"(\d+)\s*([smhdw])", (text or "").strip())
    if not m:
        raise errors.invalid(f"time_offset.{what} {text!r} must be a number and one of the units "
                             f"s, m, h, d, w (for example \"1h\" or \"7d\").")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m[2]]
    return timedelta(**{unit: int(m[1])})


class ModelMonitors:
    def __init__(self, store: ResourceStore, workspace: Workspace, registry, bigquery=None,
                 request_log=None):
        self.store = store
        self.workspace = workspace
        self.registry = registry
        self.bigquery = bigquery  # labkit.vertex.bq.LocalBigQuery
        self.request_log = request_log  # the endpoints' request-response logging (flushed)
        self.lock = threading.Lock()

    # ---- ModelMonitor
    def _find(self, parent: str, monitor_id: str) -> dict:
        monitor = self.store.get(MONITORS, monitor_id)
        if monitor is None or not monitor["name"].startswith(parent + "/"):
            raise errors.not_found("ModelMonitor", f"{parent}/modelMonitors/{monitor_id}")
        return monitor

    def create(self, parent: str, body: dict, monitor_id: str | None) -> dict:
        if monitor_id is not None and not ID.fullmatch(monitor_id):
            raise errors.invalid(f"model_monitor_id {monitor_id!r} must match {ID.pattern}.")
        target = (body.get("modelMonitoringTarget") or {}).get("vertexModel") or {}
        if not target.get("model"):
            raise errors.invalid("ModelMonitor.model_monitoring_target.vertex_model.model is "
                                 "required.")
        if not re.fullmatch(r"projects/[^/]+/locations/[^/]+/models/[^/@]+", target["model"]):
            raise errors.invalid(f"vertex_model.model {target['model']!r} must be a model "
                                 f"resource name, projects/P/locations/L/models/ID.")
        model_parent, _, model_id = target["model"].partition("/models/")
        version = target.get("modelVersionId")
        self.registry.get(model_parent, f"{model_id}@{version}" if version else model_id)
        self._check_objective(body.get("tabularObjective") or {})
        monitor_id = monitor_id or new_id()
        stamp = now()
        monitor = {**{k: v for k, v in body.items() if k in PATCHABLE},
                   "name": f"{parent}/modelMonitors/{monitor_id}",
                   "displayName": body.get("displayName") or monitor_id,
                   "modelMonitoringTarget": body["modelMonitoringTarget"],
                   "createTime": stamp, "updateTime": stamp}
        with self.lock:
            if self.store.get(MONITORS, monitor_id) is not None:
                raise errors.VertexError("ALREADY_EXISTS",
                                         f"ModelMonitor {monitor['name']} already exists.")
            self.store.put(MONITORS, monitor_id, monitor)
        return _operation(self.store, monitor["name"], "CreateModelMonitorOperationMetadata",
                          "ModelMonitor", monitor)

    def get(self, parent: str, monitor_id: str) -> dict:
        return self._find(parent, monitor_id)

    def list(self, parent: str, query: dict) -> dict:
        items = [m for m in self.store.all(MONITORS) if m["name"].startswith(parent + "/")]
        return page(items, "modelMonitors", query.get("pageSize"), query.get("pageToken"))

    def patch(self, parent: str, monitor_id: str, body: dict, mask: str | None) -> dict:
        monitor = self._find(parent, monitor_id)
        fields = [re.sub(r"_([a-z])", lambda m: m[1].upper(), f.strip())
                  for f in (mask or "").split(",") if f.strip()] or \
            [k for k in body if k in PATCHABLE]
        bad = [f for f in fields if f.split(".")[0] not in PATCHABLE]
        if bad:
            raise errors.invalid(f"update_mask names fields that cannot be updated: {bad}.")
        self._check_objective(body.get("tabularObjective") or {})
        for field in {f.split(".")[0] for f in fields}:
            if field in body:
                monitor[field] = body[field]
            else:
                monitor.pop(field, None)
        monitor["updateTime"] = now()
        self.store.put(MONITORS, monitor_id, monitor)
        return _operation(self.store, monitor["name"], "UpdateModelMonitorOperationMetadata",
                          "ModelMonitor", monitor)

    def delete(self, parent: str, monitor_id: str, force: bool) -> dict:
        """Deletes the monitor and its jobs; its schedules with force only, as Vertex does
        (DeleteModelMonitorRequest.force: "Force delete the model monitor with schedules")."""
        monitor = self._find(parent, monitor_id)
        schedules = [s for s in self.store.all("schedules") if (
            s.get("createModelMonitoringJobRequest") or {}).get("parent") == monitor["name"]]
        if schedules and not force:
            raise errors.failed_precondition(
                f"ModelMonitor {monitor['name']} has {len(schedules)} schedule(s); delete them "
                f"first or delete the monitor with force=True.")
        for job in self.store.all(JOBS):
            if job["name"].startswith(monitor["name"] + "/"):
                if job["state"] in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING"):
                    raise errors.failed_precondition(f"ModelMonitoringJob {job['name']} is "
                                                     f"still running.")
        for job in self.store.all(JOBS):
            if job["name"].startswith(monitor["name"] + "/"):
                job_id = job["name"].rsplit("/", 1)[-1]
                self.store.delete(JOBS, job_id)
                self.store.delete("modelMonitoringStats", job_id)
        for schedule in schedules:
            self.store.delete("schedules", schedule["name"].rsplit("/", 1)[-1])
        self.store.delete(MONITORS, monitor_id)
        return _operation(self.store, monitor["name"], "DeleteOperationMetadata", None)

    @staticmethod
    def _check_objective(objective: dict) -> None:
        for key in ("featureDriftSpec", "predictionOutputDriftSpec"):
            spec = objective.get(key) or {}
            for field, allowed in (("categoricalMetricType", METRICS),
                                   ("numericMetricType", {"jensen_shannon_divergence"})):
                if spec.get(field) and spec[field] not in allowed:
                    raise errors.invalid(f"tabular_objective.{key}.{field} {spec[field]!r} is "
                                         f"not supported; use one of {sorted(allowed)}.")

    # ---- ModelMonitoringJob
    def _find_job(self, monitor_name: str, job_id: str) -> dict:
        job = self.store.get(JOBS, job_id)
        if job is None or not job["name"].startswith(monitor_name + "/"):
            raise errors.not_found("ModelMonitoringJob",
                                   f"{monitor_name}/modelMonitoringJobs/{job_id}")
        return job

    def monitor_of(self, name: str) -> tuple[str, str]:
        """(parent, monitor id) of an existing monitor's resource name (a schedule's
        create_model_monitoring_job_request.parent)."""
        m = re.fullmatch(r"(projects/[^/]+/locations/[^/]+)/modelMonitors/([^/]+)", name or "")
        if not m:
            raise errors.invalid(f"{name!r} is not a ModelMonitor resource name.")
        self._find(m[1], m[2])
        return m[1], m[2]

    def running(self, schedule: str) -> int:
        return sum(1 for j in self.store.all(JOBS) if j.get("schedule") == schedule
                   and j["state"] in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING"))

    def create_job(self, parent: str, monitor_id: str, body: dict, job_id: str | None,
                   schedule: str | None = None) -> dict:
        monitor = self._find(parent, monitor_id)
        if job_id is not None and not ID.fullmatch(job_id):
            raise errors.invalid(f"model_monitoring_job_id {job_id!r} must match "
                                 f"{ID.pattern}.")
        spec = self._resolved_spec(monitor, body.get("modelMonitoringSpec") or {})
        job_id = job_id or new_id()
        stamp = now()
        job = {"name": f"{monitor['name']}/modelMonitoringJobs/{job_id}",
               "displayName": body.get("displayName") or job_id,
               "modelMonitoringSpec": spec, "createTime": stamp, "updateTime": stamp,
               "state": "JOB_STATE_PENDING"}
        if schedule:
            job.update(schedule=schedule, scheduleTime=stamp)
        with self.lock:
            if self.store.get(JOBS, job_id) is not None:
                raise errors.VertexError("ALREADY_EXISTS",
                                         f"ModelMonitoringJob {job['name']} already exists.")
            self.store.put(JOBS, job_id, job)
        threading.Thread(target=self._run, args=(monitor, job_id), daemon=True,
                         name=f"model-monitoring-{job_id}").start()
        return job

    def _resolved_spec(self, monitor: dict, spec: dict) -> dict:
        """The job's spec with the monitor's defaults filled in, checked as Vertex checks it
        before the job runs (unreadable kinds of input fail here, loudly)."""
        objective = dict(spec.get("objectiveSpec") or {})
        objective.setdefault("tabularObjective", monitor.get("tabularObjective") or {})
        if not objective["tabularObjective"]:
            raise errors.invalid("The model monitoring job needs a tabular objective (in the "
                                 "job or as the ModelMonitor's default tabular_objective).")
        self._check_objective(objective["tabularObjective"])
        if objective["tabularObjective"].get("featureAttributionSpec"):
            raise errors.gcp_only("Feature attribution monitoring (feature_attribution_spec) in "
                                  "Model Monitoring v2")
        if not objective.get("baselineDataset"):
            if not monitor.get("trainingDataset"):
                raise errors.invalid("The model monitoring job needs a baseline_dataset, or a "
                                     "training_dataset on the ModelMonitor.")
            objective["baselineDataset"] = monitor["trainingDataset"]
        if not objective.get("targetDataset"):
            raise errors.invalid("ModelMonitoringSpec.objective_spec.target_dataset is required.")
        for key in ("baselineDataset", "targetDataset"):
            _check_input(objective[key], key)
        fields = (monitor.get("modelMonitoringSchema") or {}).get("featureFields") or []
        if not fields:
            raise errors.invalid("The ModelMonitor needs model_monitoring_schema.feature_fields "
                                 "to monitor a tabular model.")
        resolved = {"objectiveSpec": objective}
        for key in ("notificationSpec", "outputSpec"):
            if spec.get(key) or monitor.get(key):
                resolved[key] = spec.get(key) or monitor[key]
        if (resolved.get("notificationSpec") or {}).get("notificationChannelConfigs"):
            raise errors.gcp_only("Cloud Monitoring notification channels for model monitoring "
                                  "alerts (email_config and enable_cloud_logging run locally)")
        return resolved

    def get_job(self, parent: str, monitor_id: str, job_id: str) -> dict:
        return self._find_job(self._find(parent, monitor_id)["name"], job_id)

    def list_jobs(self, parent: str, monitor_id: str, query: dict) -> dict:
        name = self._find(parent, monitor_id)["name"]
        items = [j for j in self.store.all(JOBS) if j["name"].startswith(name + "/")]
        items.sort(key=lambda j: j["createTime"], reverse=True)
        return page(items, "modelMonitoringJobs", query.get("pageSize"), query.get("pageToken"))

    def delete_job(self, parent: str, monitor_id: str, job_id: str) -> dict:
        job = self._find_job(self._find(parent, monitor_id)["name"], job_id)
        if job["state"] in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING"):
            raise errors.failed_precondition(f"ModelMonitoringJob {job['name']} is still "
                                             f"running.")
        self.store.delete(JOBS, job_id)
        self.store.delete("modelMonitoringStats", job_id)
        return _operation(self.store, job["name"], "DeleteOperationMetadata", None)

    # ---- running a job
    def _update(self, job_id: str, **fields) -> dict:
        with self.lock:
            job = self.store.get(JOBS, job_id)
            job.update(fields, updateTime=now())
            return self.store.put(JOBS, job_id, job)

    def _run(self, monitor: dict, job_id: str) -> None:
        job = self._update(job_id, state="JOB_STATE_RUNNING")
        objective = job["modelMonitoringSpec"]["objectiveSpec"]
        try:
            schema = monitor.get("modelMonitoringSchema") or {}
            baseline = self._read(objective["baselineDataset"], schema)
            target = self._read(objective["targetDataset"], schema)
            points, status = self._analyze(monitor, job, objective["tabularObjective"],
                                           baseline, target)
        except errors.VertexError as exc:
            self._update(job_id, state="JOB_STATE_FAILED",
                         jobExecutionDetail={"error": exc.as_operation_error()})
            return
        except Exception as exc:  # a fault fails this job, not the services
            self._update(job_id, state="JOB_STATE_FAILED", jobExecutionDetail={"error": {
                "code": 13, "message": f"Internal error in the local model monitoring: "
                                       f"{type(exc).__name__}: {exc}"}})
            return
        self.store.put("modelMonitoringStats", job_id, {"job": job["name"], "points": points})
        self._notify(job, [p for p in points if p["hasAnomaly"]])
        if (job["modelMonitoringSpec"].get("outputSpec") or {}).get("gcsBaseDirectory"):
            for kind in status:  # said where the SDK shows a job's outcome, not kept silent
                status[kind]["message"] = " ".join(filter(None, [
                    status[kind]["message"], "The TensorFlow Data Validation statistics files "
                    "Vertex AI writes under output_spec.gcs_base_directory are not written "
                    "locally; search_metrics() and search_alerts() return the same results."]))
        detail = {"baselineDatasets": [{"location": _location(objective["baselineDataset"])}],
                  "targetDatasets": [{"location": _location(objective["targetDataset"])}],
                  "objectiveStatus": status}
        self._update(job_id, state="JOB_STATE_SUCCEEDED", jobExecutionDetail=detail)

    def _notify(self, job: dict, anomalies: list[dict]) -> None:
        """The notification spec, as the v1 engine keeps it locally: an email to the outbox
        (logs/monitoring-email-outbox.jsonl) and, with enable_cloud_logging, one Cloud
        Logging entry per anomaly (logs/model-monitoring.jsonl)."""
        spec = job["modelMonitoringSpec"].get("notificationSpec") or {}
        if not anomalies:
            return
        summary = [{"statsName": a["statsName"], "objectiveType": a["objectiveType"],
                    "algorithm": a["algorithm"], "threshold": a["thresholdValue"],
                    "deviation": a["currentStats"]["distributionValue"]["distributionDeviation"]}
                   for a in anomalies]
        emails = (spec.get("emailConfig") or {}).get("userEmails") or []
        if emails:
            self._append("monitoring-email-outbox.jsonl", {
                "to": emails, "time": now(), "anomalies": summary,
                "subject": f"Vertex AI Model Monitoring: {len(anomalies)} anomalies detected "
                           f"in {job['displayName']}"})
        if spec.get("enableCloudLogging"):
            project = job["name"].split("/")[1]
            for anomaly in summary:
                self._append("model-monitoring.jsonl", {
                    "logName": f"projects/{project}/logs/aiplatform.googleapis.com%2F"
                               f"model_monitoring_anomaly",
                    "resource": {"type": "aiplatform.googleapis.com/ModelMonitor",
                                 "labels": {"resource_container": project,
                                            "location": job["name"].split("/")[3],
                                            "model_monitor": job["name"].split("/")[5]}},
                    "severity": "WARNING", "timestamp": now(),
                    "jsonPayload": {**anomaly, "modelMonitoringJob": job["name"]}})

    def _append(self, name: str, entry: dict) -> None:
        with self.lock, open(self.workspace.path("logs", name), "a") as f:
            f.write(json.dumps(entry) + "\n")

    def _endpoint_rows(self, endpoints: list[str], schema: dict) -> list[dict]:
        """The rows of the endpoints' request-response logging tables (Vertex's layout, see
        request_log): one row per instance, its features by name (a list instance by the
        schema's feature order), its prediction's fields (a bare value is the first
        prediction field), and logging_time."""
        from labkit.vertex.bq import read_rows
        from labkit.vertex.monitoring.hooks import logging_table

        if self.request_log is not None:
            self.request_log.flush()
        rows = []
        for name in endpoints:
            endpoint = self.store.get("endpoints", name.rsplit("/", 1)[-1])
            if endpoint is None or endpoint["name"] != name:
                raise errors.not_found("Endpoint", name)
            table = logging_table(endpoint)
            if table is None:
                raise errors.failed_precondition(
                    f"Endpoint {name} does not log requests and responses: create it with "
                    f"enable_request_response_logging=True to monitor its traffic.")
            try:
                logged = read_rows(self.bigquery, *table.split("."))
            except errors.VertexError:
                logged = []  # no request logged yet
            for entry in logged:
                pairs = zip(entry.get("request_payload") or [],
                            entry.get("response_payload") or [], strict=False)
                for request, response in pairs:
                    row = self._row(json.loads(request), json.loads(response), schema)
                    row["logging_time"] = entry.get("logging_time")
                    rows.append(row)
        return rows

    def _batch_rows(self, name: str, schema: dict) -> list[dict]:
        """A batch prediction job's instances and predictions, from its output (Cloud Storage
        prediction.results-* lines or the BigQuery predictions table)."""
        from labkit.storage import local_path
        from labkit.vertex.bq import read_rows

        job = self.store.get("batchPredictionJobs", name.rsplit("/", 1)[-1])
        if job is None or job["name"] != name:
            raise errors.not_found("BatchPredictionJob", name)
        if job.get("state") != "JOB_STATE_SUCCEEDED":
            raise errors.failed_precondition(f"BatchPredictionJob {name} is {job.get('state')}; "
                                             f"only a succeeded job's output can be monitored.")
        info = job.get("outputInfo") or {}
        if info.get("bigqueryOutputTable"):
            project, dataset = info["bigqueryOutputDataset"].removeprefix("bq://").split(".")
            pairs = [({k: v for k, v in r.items() if k != "prediction"},
                      _loads(r.get("prediction")))
                     for r in read_rows(self.bigquery, project, dataset,
                                        info["bigqueryOutputTable"])]
        else:
            folder = local_path(info["gcsOutputDirectory"].rstrip("/") + "/", self.workspace)
            pairs = []
            for path in sorted(folder.glob("prediction.results-*")):
                for line in path.read_text().splitlines():
                    if line.strip():
                        entry = json.loads(line)
                        pairs.append((entry["instance"], entry["prediction"]))
        return [self._row(instance, prediction, schema) for instance, prediction in pairs]

    @staticmethod
    def _row(instance, prediction, schema: dict) -> dict:
        """One instance and its prediction as named columns: a list instance by the schema's
        feature order, a bare prediction as the first prediction field."""
        features = [f["name"] for f in schema.get("featureFields") or []]
        outputs = [f["name"] for f in schema.get("predictionFields") or []]
        row = dict(instance) if isinstance(instance, dict) else \
            dict(zip(features, instance, strict=False))
        if isinstance(prediction, dict):
            row.update(prediction)
        elif outputs:
            row[outputs[0]] = prediction
        return row

    def _read(self, source: dict, schema: dict | None = None) -> dict[str, list]:
        """{column: values} of a ModelMonitoringInput's rows (filtered by its time window)."""
        if source.get("vertexEndpointLogs"):
            rows = self._endpoint_rows(source["vertexEndpointLogs"]["endpoints"], schema or {})
            return self._columns(source, rows, "logging_time")
        if source.get("batchPredictionOutput"):
            rows = self._batch_rows(source["batchPredictionOutput"]["batchPredictionJob"],
                                    schema or {})
            return self._columns(source, rows, None)
        dataset = source["columnizedDataset"]
        if dataset.get("bigquerySource"):
            bq = dataset["bigquerySource"]
            if bq.get("query"):
                from google.api_core import exceptions

                try:
                    rows = [dict(r) for r in self.bigquery.client().query(bq["query"]).result()]
                except exceptions.GoogleAPICallError as exc:
                    raise errors.invalid(f"The dataset's query failed: {exc.message}") from None
            else:
                rows = training_data._bigquery(self.bigquery, bq.get("tableUri", ""))
        elif dataset.get("gcsSource"):
            gcs = dataset["gcsSource"]
            rows = training_data._gcs(gcs.get("gcsUri", ""),
                                      GCS_FORMATS.get(gcs.get("format", 0), "csv"),
                                      self.workspace)
        else:
            rows = self._managed_dataset(dataset["vertexDataset"])
        return self._columns(source, rows, dataset.get("timestampField"))

    @staticmethod
    def _columns(source: dict, rows: list[dict], stamp_field: str | None) -> dict[str, list]:
        start, end = _window(source)
        if (start or end) and stamp_field:
            rows = [r for r in rows if r.get(stamp_field) is not None and
                    (start is None or _time(r[stamp_field]) >= start) and
                    (end is None or _time(r[stamp_field]) < end)]
        if not rows:
            raise errors.invalid(f"The dataset {_location(source)} has no rows to monitor.")
        names = list(dict.fromkeys(k for r in rows for k in r))
        return {name: [r.get(name) for r in rows] for name in names}

    def _managed_dataset(self, name: str) -> list[dict]:
        from labkit.vertex.automl.datasets import read_frame

        dataset = self.store.get("datasets", name.rsplit("/", 1)[-1])
        if dataset is None:
            raise errors.not_found("Dataset", name)
        frame = read_frame(dataset, self.workspace, self.bigquery)
        return json.loads(frame.to_json(orient="records", date_format="iso"))

    def _analyze(self, monitor: dict, job: dict, objective: dict, baseline: dict,
                 target: dict) -> tuple[list, dict]:
        schema = monitor.get("modelMonitoringSchema") or {}
        points, status = [], {}
        for key, kind, fields in (("featureDriftSpec", FEATURE_DRIFT, "featureFields"),
                                  ("predictionOutputDriftSpec", OUTPUT_DRIFT,
                                   "predictionFields")):
            spec = objective.get(key)
            if spec is None:
                continue
            wanted = set(spec.get("features") or [])
            chosen = [f for f in schema.get(fields) or [] if not wanted or f["name"] in wanted]
            # A field the datasets do not both have is skipped (Google's sample monitors a
            # query that selects some of the schema's features); none at all is an error.
            present = [f for f in chosen if f["name"] in baseline and f["name"] in target]
            missing = [f["name"] for f in chosen if f not in present]
            if not present:
                raise errors.invalid(f"None of the schema's {fields} {missing} are columns of "
                                     f"both the baseline and the target dataset.")
            for field in present:
                points.append(self._point(job, kind, field, spec, baseline[field["name"]],
                                          target[field["name"]]))
            status[kind] = {"code": 0, "message": f"Not in both datasets, not monitored: "
                                                  f"{missing}." if missing else ""}
        return points, status

    @staticmethod
    def _point(job: dict, kind: str, field: dict, spec: dict, base: list, current: list) -> dict:
        numeric = str(field.get("dataType", "")).lower() in NUMERIC_TYPES
        algorithm = spec.get("numericMetricType" if numeric else "categoricalMetricType") or \
            ("jensen_shannon_divergence" if numeric else "l_infinity")
        if numeric:
            found = stats.compare([_float(v) for v in base], [_float(v) for v in current], True)
        else:
            found = stats.compare([str(v) for v in base if v is not None],
                                  [str(v) for v in current if v is not None], False)
            if algorithm == "jensen_shannon_divergence":
                found["distance"] = stats.js_divergence(found["baseline"], found["target"])
        condition = (spec.get("featureAlertConditions") or {}).get(field["name"]) or \
            spec.get("defaultNumericAlertCondition" if numeric else
                     "defaultCategoricalAlertCondition") or {}
        threshold = float(condition.get("threshold") or stats.DEFAULT_THRESHOLD)
        bins = [str(b) for b in found["bins"]]
        return {"statsName": field["name"], "objectiveType": kind,
                "currentStats": {"distributionValue": {
                    "distribution": dict(zip(bins, found["target"], strict=True)),
                    "distributionDeviation": found["distance"]}},
                "baselineStats": {"distributionValue": {
                    "distribution": dict(zip(bins, found["baseline"], strict=True))}},
                "thresholdValue": threshold, "hasAnomaly": found["distance"] > threshold,
                "modelMonitoringJob": job["name"], "createTime": now(),
                "algorithm": algorithm, **({"schedule": job["schedule"]}
                                           if job.get("schedule") else {})}

    # ---- search
    def _points(self, monitor: dict) -> list[dict]:
        found = []
        for record in self.store.all("modelMonitoringStats"):
            if record["job"].startswith(monitor["name"] + "/"):
                found += record["points"]
        return found

    def search_stats(self, parent: str, monitor_id: str, body: dict) -> dict:
        monitor = self._find(parent, monitor_id)
        wanted = (body.get("statsFilter") or {}).get("tabularStatsFilter") or {}
        interval = body.get("timeInterval") or {}
        start, end = _time(interval.get("startTime")), _time(interval.get("endTime"))
        grouped: dict[tuple, list] = {}
        for point in self._points(monitor):
            if any(wanted.get(k) and point.get(p) != wanted[k] for k, p in (
                    ("statsName", "statsName"), ("objectiveType", "objectiveType"),
                    ("modelMonitoringJob", "modelMonitoringJob"), ("algorithm", "algorithm"),
                    ("modelMonitoringSchedule", "schedule"))):
                continue
            created = _time(point["createTime"])
            if (start and created < start) or (end and created >= end):
                continue
            data = {k: v for k, v in point.items() if k not in ("statsName", "objectiveType")}
            grouped.setdefault((point["statsName"], point["objectiveType"]), []).append(data)
        items = [{"tabularStats": {"statsName": name, "objectiveType": kind, "dataPoints": pts}}
                 for (name, kind), pts in sorted(grouped.items())]
        answer = page(items, "monitoringStats", body.get("pageSize"), body.get("pageToken"))
        return answer

    def search_alerts(self, parent: str, monitor_id: str, body: dict) -> dict:
        monitor = self._find(parent, monitor_id)
        interval = body.get("alertTimeInterval") or {}
        start, end = _time(interval.get("startTime")), _time(interval.get("endTime"))
        alerts = []
        for point in self._points(monitor):
            if not point["hasAnomaly"]:
                continue
            if any(body.get(k) and point[p] != body[k] for k, p in (
                    ("statsName", "statsName"), ("objectiveType", "objectiveType"),
                    ("modelMonitoringJob", "modelMonitoringJob"))):
                continue
            created = _time(point["createTime"])
            if (start and created < start) or (end and created >= end):
                continue
            deviation = point["currentStats"]["distributionValue"]["distributionDeviation"]
            alerts.append({
                "statsName": point["statsName"], "objectiveType": point["objectiveType"],
                "alertTime": point["createTime"],
                "anomaly": {"modelMonitoringJob": point["modelMonitoringJob"],
                            "algorithm": point["algorithm"], "tabularAnomaly": {
                                "summary": f"{point['algorithm']} {deviation:.4f} is above the "
                                           f"threshold {point['thresholdValue']}",
                                "anomaly": {"distributionDeviation": deviation},
                                "triggerTime": point["createTime"],
                                "condition": {"threshold": point["thresholdValue"]}}}})
        answer = page(alerts, "modelMonitoringAlerts", body.get("pageSize"),
                      body.get("pageToken"))
        answer["totalNumberAlerts"] = str(len(alerts))
        return answer


def _loads(value):
    """A BigQuery predictions table's prediction: JSON text for anything but a number."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _float(value):
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _check_input(source: dict, key: str) -> None:
    if source.get("batchPredictionOutput"):
        if not source["batchPredictionOutput"].get("batchPredictionJob"):
            raise errors.invalid(f"{key}.batch_prediction_output.batch_prediction_job is "
                                 f"required.")
        return
    if source.get("vertexEndpointLogs"):
        if not source["vertexEndpointLogs"].get("endpoints"):
            raise errors.invalid(f"{key}.vertex_endpoint_logs.endpoints is required.")
        _window(source)
        return
    if (source.get("timeOffset") or source.get("timeInterval")) and \
            not (source.get("columnizedDataset") or {}).get("timestampField"):
        raise errors.invalid(f"{key}: a time_interval or time_offset needs the dataset's "
                             f"timestamp_field.")
    _window(source)  # its durations are checked now
    dataset = source.get("columnizedDataset") or {}
    gcs = dataset.get("gcsSource") or {}
    if GCS_FORMATS.get(gcs.get("format", 0)) == "tf-record":
        raise errors.gcp_only("Model Monitoring v2 on TFRecord files")
    if not (dataset.get("vertexDataset") or gcs.get("gcsUri") or
            (dataset.get("bigquerySource") or {}).get("tableUri") or
            (dataset.get("bigquerySource") or {}).get("query")):
        raise errors.invalid(f"{key}.columnized_dataset needs a vertex_dataset, a gcs_source "
                             f"or a bigquery_source (table_uri or query).")


def _window(source: dict) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the rows a dataset's time_interval or time_offset selects: the
    offset's window ends `offset` before now (the job's run time)."""
    if source.get("timeInterval"):
        interval = source["timeInterval"]
        return _time(interval.get("startTime")), _time(interval.get("endTime"))
    offset = source.get("timeOffset")
    if not offset:
        return None, None
    end = datetime.now(UTC) - (_duration(offset["offset"], "offset") if offset.get("offset")
                               else timedelta(0))
    return ((end - _duration(offset["window"], "window")) if offset.get("window") else None,
            end)


def _location(source: dict) -> str:
    if source.get("vertexEndpointLogs"):
        return ",".join(source["vertexEndpointLogs"].get("endpoints") or [])
    dataset = source.get("columnizedDataset") or {}
    bq = dataset.get("bigquerySource") or {}
    return (dataset.get("vertexDataset") or (dataset.get("gcsSource") or {}).get("gcsUri")
            or bq.get("tableUri") or bq.get("query") or "")
