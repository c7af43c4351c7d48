"""Schedules: cron-triggered pipeline jobs (create_pipeline_job_request) or Model Monitoring
v2 jobs (create_model_monitoring_job_request) while the services run.

One scheduler thread checks active schedules every TICK_S. Local difference: a schedule's
first run starts as soon as the schedule is active (from start_time) instead of at the
first cron tick, so a lab sees a scheduled run in seconds; later runs follow the cron.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

from labkit.vertex import errors, operations
from labkit.vertex.pipelines.cron import Cron, CronError
from labkit.vertex.pipelines.pipeline_jobs import TERMINAL, PipelineJobs
from labkit.vertex.resources import matches_filter, page
from labkit.vertex.store import ResourceStore, new_id, now

TICK_S = 1.0


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Schedules:
    def __init__(self, store: ResourceStore, jobs: PipelineJobs, monitors=None):
        self.store = store
        self.jobs = jobs
        self.monitors = monitors  # labkit.vertex.monitoring.monitors.ModelMonitors
        self.lock = threading.RLock()
        self.stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True, name="pipeline-scheduler").start()

    def _find(self, parent: str, sid: str) -> dict:
        schedule = self.store.get("schedules", sid)
        if schedule is None or not schedule["name"].startswith(parent + "/"):
            raise errors.not_found("Schedule", f"{parent}/schedules/{sid}")
        return schedule

    def _save(self, schedule: dict) -> dict:
        schedule["updateTime"] = now()
        return self.store.put("schedules", schedule["name"].rsplit("/", 1)[-1], schedule)

    def create(self, parent: str, body: dict) -> dict:
        try:
            Cron(body.get("cron", ""))
        except CronError as exc:
            raise errors.invalid(f"Invalid schedule: {exc}") from exc
        request = body.get("createPipelineJobRequest")
        monitoring = body.get("createModelMonitoringJobRequest")
        if request and monitoring:
            raise errors.invalid("Invalid schedule: give one of create_pipeline_job_request and "
                                 "create_model_monitoring_job_request.")
        if monitoring:
            if not monitoring.get("modelMonitoringJob"):
                raise errors.invalid("Invalid schedule: create_model_monitoring_job_request."
                                     "model_monitoring_job is required.")
            self.monitors.monitor_of(monitoring.get("parent"))
        elif not request or not request.get("pipelineJob"):
            raise errors.invalid("Invalid schedule: create_pipeline_job_request.pipeline_job is "
                                 "required.")
        if not body.get("displayName"):
            raise errors.invalid("Invalid schedule: display_name is required.")
        max_runs = int(body.get("maxRunCount") or 0)
        if max_runs < 0:
            raise errors.invalid("Invalid schedule: max_run_count must be positive.")
        start = _parse(body.get("startTime")) or datetime.now(UTC)
        stamp = now()
        schedule = {"name": f"{parent}/schedules/{new_id()}", "displayName": body["displayName"],
                    "cron": body["cron"],
                    **({"createModelMonitoringJobRequest": monitoring} if monitoring
                       else {"createPipelineJobRequest": request}),
                    "state": "ACTIVE", "createTime": stamp, "startTime": _stamp(start),
                    "startedRunCount": "0", "nextRunTime": _stamp(start),
                    "maxConcurrentRunCount": str(body.get("maxConcurrentRunCount") or 1),
                    "allowQueueing": bool(body.get("allowQueueing"))}
        if max_runs:
            schedule["maxRunCount"] = str(max_runs)
        if body.get("endTime"):
            schedule["endTime"] = body["endTime"]
        with self.lock:
            return self._save(schedule)

    def get(self, parent: str, sid: str) -> dict:
        return self._find(parent, sid)

    def list(self, parent: str, query: dict) -> dict:
        # ModelMonitor.list_schedules() filters on create_model_monitoring_job_request.parent
        monitor, rest = None, []
        for clause in re.split(r"\s+AND\s+", (query.get("filter") or "").strip()):
            m = re.fullmatch(r'\s*create_model_monitoring_job_request\.parent\s*=\s*"?([^"]+)"?'
                             r'\s*', clause)
            if m:
                monitor = m[1]
            elif clause.strip():
                rest.append(clause)
        items = [s for s in self.store.all("schedules") if s["name"].startswith(parent + "/")
                 and matches_filter(s, " AND ".join(rest))
                 and (monitor is None or (s.get("createModelMonitoringJobRequest") or {})
                      .get("parent") == monitor)]
        return page(items, "schedules", query.get("pageSize"), query.get("pageToken"))

    def patch(self, parent: str, sid: str, body: dict, mask: str | None) -> dict:
        """schedules.patch: the fields update_mask names (ModelMonitor.update_schedule and
        PipelineJobSchedule.update send display_name, cron, end_time, max_run_count,
        max_concurrent_run_count, allow_queueing or the create request)."""
        fields = [re.sub(r"_([a-z])", lambda m: m[1].upper(), f.strip())
                  for f in (mask or "").split(",") if f.strip()]
        if not fields:
            raise errors.invalid("Invalid schedule update: update_mask is required.")
        request_key = "createModelMonitoringJobRequest" \
            if "createModelMonitoringJobRequest" in self._find(parent, sid) \
            else "createPipelineJobRequest"
        allowed = {"displayName", "cron", "endTime", "maxRunCount", "maxConcurrentRunCount",
                   "allowQueueing", request_key}
        bad = [f for f in fields if f not in allowed]
        if bad:
            raise errors.invalid(f"Invalid schedule update: {bad} cannot be updated.")
        with self.lock:
            schedule = self._find(parent, sid)
            if "cron" in fields:
                try:
                    cron = Cron(body.get("cron", ""))
                except CronError as exc:
                    raise errors.invalid(f"Invalid schedule: {exc}") from exc
                schedule["nextRunTime"] = _stamp(cron.next_after(datetime.now(UTC)))
            if request_key in fields and request_key == "createModelMonitoringJobRequest":
                self.monitors.monitor_of((body.get(request_key) or {}).get("parent"))
            for field in fields:
                if body.get(field) in (None, ""):
                    schedule.pop(field, None)
                else:
                    schedule[field] = str(body[field]) if field.startswith("max") \
                        else body[field]
            return self._save(schedule)

    def pause(self, parent: str, sid: str) -> dict:
        with self.lock:
            schedule = self._find(parent, sid)
            if schedule["state"] != "ACTIVE":
                raise errors.failed_precondition(f"Schedule {schedule['name']} is "
                                                 f"{schedule['state']}; only an ACTIVE schedule "
                                                 f"can be paused.")
            schedule.update(state="PAUSED", lastPauseTime=now())
            self._save(schedule)
        return {}

    def resume(self, parent: str, sid: str, body: dict) -> dict:
        with self.lock:
            schedule = self._find(parent, sid)
            if schedule["state"] != "PAUSED":
                raise errors.failed_precondition(f"Schedule {schedule['name']} is "
                                                 f"{schedule['state']}; only a PAUSED schedule "
                                                 f"can be resumed.")
            moment = datetime.now(UTC)
            if not body.get("catchUp"):
                moment = Cron(schedule["cron"]).next_after(moment)
            schedule.update(state="ACTIVE", lastResumeTime=now(), nextRunTime=_stamp(moment))
            self._save(schedule)
        return {}

    def delete(self, parent: str, sid: str) -> dict:
        with self.lock:
            schedule = self._find(parent, sid)
            self.store.delete("schedules", sid)
        return operations.done(self.store, schedule["name"], "DeleteOperationMetadata", None)

    # ---- the scheduler
    def _loop(self) -> None:
        while not self.stop.wait(TICK_S):
            try:
                self.tick(datetime.now(UTC))
            except Exception:  # one bad schedule must not stop the scheduler
                continue

    def tick(self, moment: datetime) -> None:
        for schedule in self.store.all("schedules"):
            with self.lock:
                current = self.store.get("schedules", schedule["name"].rsplit("/", 1)[-1])
                if current and current["state"] == "ACTIVE":
                    self._maybe_run(current, moment)

    def _start(self, schedule: dict, moment: datetime) -> str:
        """Starts the schedule's run: a pipeline job or a model monitoring job."""
        monitoring = schedule.get("createModelMonitoringJobRequest")
        if monitoring:
            parent, monitor_id = self.monitors.monitor_of(monitoring["parent"])
            job = self.monitors.create_job(parent, monitor_id, monitoring["modelMonitoringJob"],
                                           None, schedule=schedule["name"])
            return job["name"]
        parent = schedule["name"].split("/schedules/")[0]
        body = schedule["createPipelineJobRequest"]["pipelineJob"]
        job_id = f"{body.get('displayName') or schedule['displayName']}-" \
                 f"{moment.strftime('%Y%m%d%H%M%S')}"
        job_id = "".join(c if c.isalnum() or c == "-" else "-" for c in job_id.lower())[:128]
        return self.jobs.create(parent, body, job_id, schedule=schedule["name"])["name"]

    def _maybe_run(self, schedule: dict, moment: datetime) -> None:
        end = _parse(schedule.get("endTime"))
        limit = int(schedule.get("maxRunCount", 0))
        started = int(schedule["startedRunCount"])
        if (end and moment >= end) or (limit and started >= limit):
            schedule["state"] = "COMPLETED"
            self._save(schedule)
            return
        due = _parse(schedule["nextRunTime"])
        if due > moment:
            return
        monitoring = schedule.get("createModelMonitoringJobRequest")
        if monitoring:
            active = self.monitors.running(schedule["name"])
        else:
            active = len([j for j in self.jobs.store.all("pipelineJobs")
                          if j.get("scheduleName") == schedule["name"]
                          and j["state"] not in TERMINAL])
        if active >= int(schedule["maxConcurrentRunCount"]) and \
                not schedule.get("allowQueueing"):
            schedule["nextRunTime"] = _stamp(Cron(schedule["cron"]).next_after(moment))
            self._save(schedule)
            return
        try:
            response = self._start(schedule, moment)
        except errors.VertexError as exc:
            response = f"error: {exc.message}"
        started += 1
        schedule.update(startedRunCount=str(started),
                        lastScheduledRunResponse={"scheduledRunTime": _stamp(due),
                                                  "runResponse": response},
                        nextRunTime=_stamp(Cron(schedule["cron"]).next_after(moment)))
        if limit and started >= limit:
            schedule["state"] = "COMPLETED"
        self._save(schedule)
