"""ModelDeploymentMonitoringJob: its resource, the analysis it runs, schedule and alerts.

One job per endpoint, as on Vertex AI. While a job is not paused, the endpoint's served
traffic (sampled by loggingSamplingStrategy) is recorded by the hooks, and an analysis runs
every monitorInterval (a background timer of the services process) or at once when asked
through the local route POST /labkit/vertex/monitoring/JOB_ID:analyze (what
labkit.monitoring_helpers.wait_for_analysis uses; on Vertex AI one waits for the schedule).

An analysis looks at the traffic since the previous analysis (the monitoring window):
- skew (RAW_FEATURE_SKEW): each feature's serving distribution against the training data;
- drift (RAW_FEATURE_DRIFT): against the previous window's serving distribution;
baselines are kept as statistics (stats.summarize), not data: the training data's once per
job, each window's in its run record, so drift needs no second read of old traffic;
with the distances of labkit.vertex.monitoring.stats and the thresholds of the objective
(per feature; a default threshold; 0.3 for every feature when none is given). A distance
above its threshold is an anomaly: the job records it, "emails" it (appended to
logs/monitoring-email-outbox.jsonl in the workspace) and, when the alert config enables
logging, writes a Cloud Logging entry (JSON) to logs/model-monitoring.jsonl.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from datetime import UTC, datetime

import yaml

from labkit.storage import local_path
from labkit.vertex import errors, operations
from labkit.vertex.monitoring import stats, training_data
from labkit.vertex.monitoring.request_log import RequestLog
from labkit.vertex.resources import page
from labkit.vertex.store import ResourceStore, new_id, now
from labkit.workspace import Workspace

COLLECTION = "modelDeploymentMonitoringJobs"
RUNS = "modelDeploymentMonitoringRuns"
SKEW, DRIFT = "RAW_FEATURE_SKEW", "RAW_FEATURE_DRIFT"
OBJECTIVES = {1: SKEW, 2: DRIFT, 3: "FEATURE_ATTRIBUTION_SKEW", 4: "FEATURE_ATTRIBUTION_DRIFT"}
MIN_INTERVAL_S = 3600
STARTUP_S = 3.0  # seconds a new job is PENDING (minutes on Vertex AI)
TICK_S = 30.0
PATCHABLE = {"displayName", "modelDeploymentMonitoringScheduleConfig",
             "modelMonitoringAlertConfig", "loggingSamplingStrategy", "labels", "logTtl",
             "enableMonitoringPipelineLogs", "modelDeploymentMonitoringObjectiveConfigs"}


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _float(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _seconds(duration: str | None, default: float) -> float:
    if not duration:
        return default
    return float(str(duration).rstrip("s"))


class MonitoringJobs:
    def __init__(self, store: ResourceStore, workspace: Workspace, bigquery=None,
                 startup_s: float = STARTUP_S):
        """bigquery: labkit.vertex.bq.LocalBigQuery for request-response logging and
        BigQuery training data (None: neither, for engine tests). startup_s: how long a new
        job stays PENDING before it is RUNNING and logs traffic."""
        self.startup_s = startup_s
        self.workspace = workspace
        self.store = store
        self.bigquery = bigquery
        self.log = RequestLog(workspace, bigquery)
        self.baselines: dict[str, dict] = {}  # job id + deployed model -> training columns
        self.analysis_lock = threading.Lock()
        self.by_endpoint: dict[str, dict] = {}
        self._index()

    def _index(self) -> None:
        self.by_endpoint = {j["endpoint"]: j for j in self.store.all(COLLECTION)}

    # ---- control plane
    def _get(self, parent: str, job_id: str) -> dict:
        job = self.store.get(COLLECTION, job_id) if job_id.isdigit() else None
        if job is None or not job["name"].startswith(parent + "/"):
            raise errors.not_found("ModelDeploymentMonitoringJob",
                                   f"{parent}/{COLLECTION}/{job_id}")
        return self._started(job)

    def _started(self, job: dict) -> dict:
        """A new job is PENDING while Vertex sets up its logging, then RUNNING; traffic
        sent before that is not logged (Vertex AI: the job's state, JobState)."""
        if job["state"] == "JOB_STATE_PENDING" and time.time() >= job.get("_runningAt", 0.0):
            with self.store.lock:
                job["state"] = "JOB_STATE_RUNNING"
                job["_windowStart"] = job["_runningAt"]
                job["updateTime"] = _stamp(job["_runningAt"])
                self.store.put(COLLECTION, job["name"].rsplit("/", 1)[-1], job)
                self.by_endpoint[job["endpoint"]] = job
        return job

    def get(self, parent: str, job_id: str) -> dict:
        return self._get(parent, job_id)

    def list(self, parent: str, query: dict) -> dict:
        found = [self._started(j) for j in self.store.all(COLLECTION)
                 if j["name"].startswith(parent + "/")]
        return page(found, COLLECTION, query.get("pageSize"), query.get("pageToken"))

    def create(self, parent: str, body: dict) -> dict:
        endpoint = body.get("endpoint") or ""
        if not body.get("displayName"):
            raise errors.invalid("ModelDeploymentMonitoringJob.display_name is required.")
        endpoint_id = endpoint.rsplit("/", 1)[-1]
        stored = self.store.get("endpoints", endpoint_id) if endpoint_id.isdigit() else None
        if stored is None:
            raise errors.not_found("Endpoint", endpoint)
        configs = body.get("modelDeploymentMonitoringObjectiveConfigs") or []
        if not configs:
            raise errors.invalid("model_deployment_monitoring_objective_configs must name at "
                                 "least one deployed model.")
        deployed = {d["id"] for d in stored.get("deployedModels", [])}
        for config in configs:
            if config.get("deployedModelId") not in deployed:
                raise errors.invalid(f"DeployedModel {config.get('deployedModelId')} is not "
                                     f"deployed on {stored['name']}.")
            objective = config.get("objectiveConfig") or {}
            if objective.get("explanationConfig", {}).get("enableFeatureAttributes"):
                raise errors.gcp_only("Feature attribution skew and drift monitoring")
            if (objective.get("trainingPredictionSkewDetectionConfig")
                    and not objective.get("trainingDataset")):
                raise errors.invalid("Skew detection needs a training_dataset.")
        schedule = body.get("modelDeploymentMonitoringScheduleConfig") or {}
        interval = _seconds(schedule.get("monitorInterval"), MIN_INTERVAL_S)
        if interval < MIN_INTERVAL_S:
            raise errors.invalid("monitor_interval must be at least 1 hour.")
        with self.store.lock:
            if stored["name"] in self.by_endpoint:
                raise errors.VertexError(
                    "ALREADY_EXISTS", f"Endpoint {stored['name']} already has a model "
                                      f"deployment monitoring job: "
                                      f"{self.by_endpoint[stored['name']]['name']}.")
            job_id = new_id()
            stamp = time.time()
            project = parent.split("/")[1]
            job = {k: v for k, v in body.items() if k != "name"}
            job.update({
                "name": f"{parent}/{COLLECTION}/{job_id}", "endpoint": stored["name"],
                "state": "JOB_STATE_PENDING", "scheduleState": "PENDING",
                "modelDeploymentMonitoringScheduleConfig": {
                    **schedule, "monitorInterval": f"{int(interval)}s"},
                "bigqueryTables": [{
                    "logSource": "SERVING", "logType": "PREDICT",
                    "bigqueryTablePath": f"bq://{project}.model_deployment_monitoring_"
                                         f"{endpoint_id}.serving_predict"}],
                "createTime": _stamp(stamp), "updateTime": _stamp(stamp),
                "nextScheduleTime": _stamp(stamp + interval),
                "_windowStart": stamp + self.startup_s, "_runningAt": stamp + self.startup_s,
            })
            self.store.put(COLLECTION, job_id, job)
            self.by_endpoint[stored["name"]] = job
        return self._public(job)

    @staticmethod
    def _public(job: dict) -> dict:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def patch(self, parent: str, job_id: str, body: dict, mask: str | None) -> dict:
        with self.store.lock:
            job = self._get(parent, job_id)
            fields = [f.strip() for f in (mask or "").split(",") if f.strip()]
            camel = ["".join(w.capitalize() if i else w for i, w in enumerate(f.split("_")))
                     for f in fields] or [k for k in body if k in PATCHABLE]
            for field in camel:
                if field not in PATCHABLE:
                    raise errors.invalid(f"Field {field} cannot be updated.")
                if field in body:
                    job[field] = body[field]
                else:
                    job.pop(field, None)
            job["updateTime"] = now()
            self.store.put(COLLECTION, job_id, job)
            self.by_endpoint[job["endpoint"]] = job
            self.baselines = {k: v for k, v in self.baselines.items()
                              if not k.startswith(job["name"] + "/")}  # objectives may change
        return operations.done(self.store, job["name"],
                               "UpdateModelDeploymentMonitoringJobOperationMetadata",
                               "ModelDeploymentMonitoringJob", self._public(job))

    def _set_state(self, parent: str, job_id: str, state: str) -> dict:
        with self.store.lock:
            job = self._get(parent, job_id)
            job["state"] = state
            job["updateTime"] = now()
            self.store.put(COLLECTION, job_id, job)
            self.by_endpoint[job["endpoint"]] = job
        return {}

    def pause(self, parent: str, job_id: str) -> dict:
        return self._set_state(parent, job_id, "JOB_STATE_PAUSED")

    def resume(self, parent: str, job_id: str) -> dict:
        return self._set_state(parent, job_id, "JOB_STATE_RUNNING")

    def delete(self, parent: str, job_id: str) -> dict:
        with self.store.lock:
            job = self._get(parent, job_id)
            self.store.delete(COLLECTION, job_id)
            self.store.delete(RUNS, job_id)
            self.by_endpoint.pop(job["endpoint"], None)
        self.log.forget(job_id)
        return operations.done(self.store, job["name"], "DeleteOperationMetadata", None)

    # ---- traffic (called from the predict path through hooks)
    def record(self, endpoint_name: str, deployed_model_id: str, instances: list,
               predictions: list) -> None:
        job = self.by_endpoint.get(endpoint_name)
        if job is None or self._started(job)["state"] != "JOB_STATE_RUNNING":
            return
        rate = (job.get("loggingSamplingStrategy") or {}).get("randomSampleConfig", {}).get(
            "sampleRate", 1.0)
        if rate < 1.0 and random.random() >= float(rate):
            return
        job_id = job["name"].rsplit("/", 1)[-1]
        self.log.traffic(job_id, deployed_model_id, instances, predictions)
        table = job["bigqueryTables"][0]["bigqueryTablePath"].removeprefix("bq://")
        self.log.bigquery_row(table, endpoint_name, deployed_model_id, instances, predictions)

    # ---- analysis
    def analyze_now(self, parent: str, job_id: str) -> dict:
        self._get(parent, job_id)
        self.analyze(job_id)
        return self._public(self._get(parent, job_id))

    def due(self) -> list[str]:
        t = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        jobs = [self._started(j) for j in self.store.all(COLLECTION)]
        return [j["name"].rsplit("/", 1)[-1] for j in jobs
                if j["state"] == "JOB_STATE_RUNNING" and j.get("nextScheduleTime", t) <= t]

    def analyze(self, job_id: str) -> dict:
        """Runs one analysis of a job's latest window; returns the run record."""
        with self.analysis_lock:
            self.log.flush()
            job = self.store.get(COLLECTION, job_id)
            if job is None:
                raise errors.not_found("ModelDeploymentMonitoringJob", job_id)
            end = time.time()
            start = job.get("_windowStart", 0.0)
            runs = self.store.get(RUNS, job_id) or {"runs": []}
            previous = runs["runs"][-1] if runs["runs"] else {}
            window = self.log.read(job_id, start, end)
            results = []
            summaries: dict[str, dict] = {}  # this window's statistics: the next drift baseline
            status: dict = {}
            try:
                for config in job["modelDeploymentMonitoringObjectiveConfigs"]:
                    deployed = config["deployedModelId"]
                    found, summaries[deployed] = self._analyze_model(
                        job, config, window, previous.get("summaries", {}).get(deployed))
                    results.extend(found)
            except errors.VertexError as exc:
                status = exc.as_operation_error()
            run = {"runTime": _stamp(end), "windowStart": start, "windowEnd": end,
                   "count": len(window), "results": results, "summaries": summaries}
            runs["runs"].append(run)
            self.store.put(RUNS, job_id, runs)
            self.log.prune(job_id, end)
            interval = _seconds(job["modelDeploymentMonitoringScheduleConfig"].get(
                "monitorInterval"), MIN_INTERVAL_S)
            with self.store.lock:
                job = self.store.get(COLLECTION, job_id) or job
                job.update({"_windowStart": end, "scheduleState": "PENDING",
                            "latestMonitoringPipelineMetadata": {"runTime": _stamp(end),
                                                                 "status": status},
                            "nextScheduleTime": _stamp(end + interval), "updateTime": now()})
                if job["name"] and self.store.get(COLLECTION, job_id):
                    self.store.put(COLLECTION, job_id, job)
                    self.by_endpoint[job["endpoint"]] = job
            anomalies = [r for r in results if r["anomaly"]]
            if anomalies:
                self._alert(job, run, anomalies)
            return run

    def _schema(self, job: dict) -> dict | None:
        """The instance schema's properties ({name: {"type": ...}}, in order), if any."""
        for key in ("analysisInstanceSchemaUri", "predictInstanceSchemaUri"):
            if job.get(key):
                try:
                    schema = yaml.safe_load(local_path(job[key], self.workspace).read_text())
                except (FileNotFoundError, ValueError, yaml.YAMLError):
                    raise errors.invalid(f"The instance schema {job[key]} is not found or is "
                                         f"not YAML.") from None
                return (schema or {}).get("properties") or {}
        return None

    def _feature_names(self, job: dict, config: dict, instance: list) -> list[str]:
        schema = self._schema(job)
        if schema is not None:
            return list(schema)
        sample = job.get("samplePredictInstance")
        if isinstance(sample, dict):
            return list(sample)
        baseline = self._baseline(job, config)
        if baseline is not None and len(baseline) == len(instance):
            return list(baseline)  # the training columns, in order, without the target
        return [f"feature_{i}" for i in range(len(instance))]

    def _baseline(self, job: dict, config: dict) -> dict | None:
        """{feature: stats.summarize(training values)}, in the training data's column order."""
        dataset = (config.get("objectiveConfig") or {}).get("trainingDataset")
        if not dataset:
            return None
        key = f"{job['name']}/{config['deployedModelId']}"
        if key not in self.baselines:
            columns = self._typed(job, training_data.load(dataset, self.workspace, self.bigquery))
            self.baselines[key] = {name: stats.summarize(values)
                                   for name, values in columns.items()}
        return self.baselines[key]

    def _columns(self, job: dict, config: dict, entries: list[dict]) -> dict[str, list]:
        if not entries:
            return {}
        first = entries[0]["i"]
        if isinstance(first, dict):
            names = list(first)
            return self._typed(job, {n: [e["i"].get(n) if isinstance(e["i"], dict) else None
                                         for e in entries] for n in names})
        names = self._feature_names(job, config, first)
        rows = [e["i"] if isinstance(e["i"], list) else [] for e in entries]
        width = len(names)
        rows = [r if len(r) == width else (r + [None] * width)[:width] for r in rows]
        columns = dict(zip(names, map(list, zip(*rows, strict=True)), strict=True))
        return self._typed(job, columns)

    def _typed(self, job: dict, columns: dict[str, list]) -> dict[str, list]:
        """Values as the instance schema types them (TFDV analyses the schema's types):
        number/integer -> float, string -> str; values that do not convert are missing."""
        schema = self._schema(job) or {}
        for name, values in columns.items():
            kind = (schema.get(name) or {}).get("type")
            if kind in ("number", "integer"):
                columns[name] = [_float(v) for v in values]
            elif kind == "string":
                columns[name] = [None if v is None else str(v) for v in values]
        return columns

    @staticmethod
    def _thresholds(detection: dict, per_feature_key: str, default_key: str,
                    features: list[str]) -> dict[str, float]:
        per_feature = {k: float(v.get("value", 0)) for k, v in
                       (detection.get(per_feature_key) or {}).items()}
        default = (detection.get(default_key) or {}).get("value")
        if default is None and not per_feature:
            default = stats.DEFAULT_THRESHOLD
        found = {f: per_feature[f] for f in features if f in per_feature}
        if default is not None:
            found.update({f: float(default) for f in features if f not in per_feature})
        return found

    def _analyze_model(self, job: dict, config: dict, window: list[dict],
                       previous: dict | None) -> tuple[list[dict], dict]:
        """(results, this window's summaries) for one deployed model; `previous` is the
        previous window's summaries, the drift baseline."""
        deployed = config["deployedModelId"]
        entries = [e for e in window if e["d"] == deployed]
        if not entries:
            return [], {}
        objective = config.get("objectiveConfig") or {}
        columns = self._columns(job, config, entries)
        current = {name: stats.summarize(values) for name, values in columns.items()}
        results = []
        # Skew compares serving with the training data; drift with the previous window.
        skew = objective.get("trainingPredictionSkewDetectionConfig")
        if skew is not None:
            results += self._compare(SKEW, skew, "skew", deployed,
                                     self._baseline(job, config) or {}, columns)
        drift = objective.get("predictionDriftDetectionConfig")
        if drift is not None and previous:
            results += self._compare(DRIFT, drift, "drift", deployed, previous, columns)
        return results, current

    def _compare(self, kind: str, detection: dict, prefix: str, deployed: str,
                 baseline: dict, columns: dict) -> list[dict]:
        """One result per feature present in both, against its threshold (the detection
        config's `{prefix}Thresholds` / `default{Prefix}Threshold`)."""
        features = [f for f in columns if f in baseline]
        thresholds = self._thresholds(detection, f"{prefix}Thresholds",
                                      f"default{prefix.title()}Threshold", features)
        return [self._result(kind, deployed, feature, threshold, baseline[feature],
                             columns[feature]) for feature, threshold in thresholds.items()]

    @staticmethod
    def _result(objective: str, deployed: str, feature: str, threshold: float,
                baseline: dict, target: list) -> dict:
        try:
            compared = stats.compare_to(baseline, target)
        except ValueError:  # numbers in the baseline, text in serving: the type changed
            compared = {"type": "type changed", "distance": 1.0}
        return {"objective": objective, "deployedModelId": deployed, "feature": feature,
                "threshold": threshold, "distance": compared["distance"],
                "anomaly": compared["distance"] > threshold, "stats": compared}

    def _alert(self, job: dict, run: dict, anomalies: list[dict]) -> None:
        config = job.get("modelMonitoringAlertConfig") or {}
        summary = [{"objective": a["objective"], "deployedModelId": a["deployedModelId"],
                    "featureDisplayName": a["feature"], "distance": a["distance"],
                    "threshold": a["threshold"]} for a in anomalies]
        emails = (config.get("emailAlertConfig") or {}).get("userEmails") or []
        if emails:
            mail = {"to": emails, "time": run["runTime"],
                    "subject": f"Vertex AI Model Monitoring: {len(anomalies)} anomalies "
                               f"detected in {job['displayName']}", "anomalies": summary}
            self._append("monitoring-email-outbox.jsonl", mail)
        if config.get("enableLogging"):
            project, location = job["name"].split("/")[1], job["name"].split("/")[3]
            for anomaly in summary:
                self._append("model-monitoring.jsonl", {
                    "logName": f"projects/{project}/logs/aiplatform.googleapis.com%2F"
                               f"model_monitoring_anomaly",
                    "resource": {"type": "aiplatform.googleapis.com/ModelDeploymentMonitoringJob",
                                 "labels": {"resource_container": project,
                                            "location": location,
                                            "model_deployment_monitoring_job":
                                                job["name"].rsplit("/", 1)[-1]}},
                    "severity": "WARNING", "timestamp": run["runTime"],
                    "jsonPayload": {**anomaly, "endpoint": job["endpoint"],
                                    "modelDeploymentMonitoringJob": job["name"]}})

    def _append(self, name: str, entry: dict) -> None:
        with open(self.workspace.path("logs", name), "a") as f:
            f.write(json.dumps(entry) + "\n")

    # ---- statistics and anomalies, as searchModelDeploymentMonitoringStatsAnomalies answers
    def search(self, parent: str, job_id: str, body: dict) -> dict:
        self._get(parent, job_id)
        deployed = body.get("deployedModelId")
        if not deployed:
            raise errors.invalid("deployed_model_id is required.")
        wanted = [OBJECTIVES.get(o.get("type"), o.get("type"))
                  for o in body.get("objectives") or []]
        if not wanted:
            raise errors.invalid("objectives is required.")
        feature_name = body.get("featureDisplayName")
        start, end = body.get("startTime") or "", body.get("endTime") or "9999"
        runs = (self.store.get(RUNS, job_id) or {"runs": []})["runs"]
        out = []
        for objective in wanted:
            features: dict[str, dict] = {}
            anomaly_count = 0
            for run in reversed(runs):  # newest first
                if not (start <= run["runTime"] <= end):
                    continue
                for r in run["results"]:
                    if (r["objective"] != objective or r["deployedModelId"] != deployed
                            or (feature_name and r["feature"] != feature_name)):
                        continue
                    entry = features.setdefault(r["feature"], {
                        "featureDisplayName": r["feature"],
                        "threshold": {"value": r["threshold"]}, "predictionStats": []})
                    entry["predictionStats"].append({
                        "distributionDeviation": r["distance"],
                        "anomalyDetectionThreshold": r["threshold"],
                        "startTime": _stamp(run["windowStart"]),
                        "endTime": _stamp(run["windowEnd"])})
                    anomaly_count += r["anomaly"]
            if features:
                out.append({"objective": objective, "deployedModelId": deployed,
                            "anomalyCount": anomaly_count,
                            "featureStats": list(features.values())})
        return {"monitoringStats": out}

    # ---- the schedule
    def start_timer(self) -> None:
        threading.Thread(target=self._tick, daemon=True, name="monitoring-schedule").start()

    def _tick(self) -> None:
        while True:
            time.sleep(TICK_S)
            for job_id in self.due():
                try:
                    self.analyze(job_id)
                except Exception as exc:  # noqa: BLE001 - one failing job must not stop others
                    print(f"model monitoring analysis of job {job_id} failed: {exc}",
                          file=sys.stderr, flush=True)
