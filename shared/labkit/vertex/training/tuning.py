"""HyperparameterTuningJobs: trials of the trial job spec, proposed by the study.

Each trial runs the trial job spec as local processes (see runner) with the trial's
hyperparameters appended to the program's arguments as --NAME=VALUE, outputs under
<baseOutputDirectory>/<trial id>/, and its own CLOUD_ML_HP_METRIC_FILE, which
cloudml-hypertune writes (one JSON line per report, with global_step). parallelTrialCount
trials run at once. A trial that exits non-zero, or reports no value for the study's
metric, is INFEASIBLE. The job fails when maxFailedTrialCount trials have failed (0: only
when no trial succeeds). The final measurement is the last report (LAST_MEASUREMENT, the
default) or the best one (BEST_MEASUREMENT); a trial stopped early by the median rule
ends SUCCEEDED with what it reported so far. Optimisation follows the first metric.
"""

from __future__ import annotations

import json
import threading
import time

from google.cloud.aiplatform_v1.types import StudySpec

from labkit.vertex import errors
from labkit.vertex.store import ResourceStore, new_id, now
from labkit.vertex.training import runner
from labkit.vertex.training.custom_jobs import validate_job_spec
from labkit.vertex.training.job_table import JobCollection, JobTable
from labkit.vertex.training.study import median_should_stop, parse_parameters, suggester
from labkit.workspace import Workspace

POLL_S = 0.1


def _enum(enum_type, value, default: str) -> str:
    if value in (None, "", 0, "0"):
        return default
    try:
        return enum_type(int(value)).name
    except ValueError:
        return str(value)


def _arg(value) -> str:
    """Vertex writes whole-number values without a decimal point (--batch_size=32)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_measurements(path, metric_ids: list[str]) -> list[dict]:
    """cloudml-hypertune's metric file -> Vertex Measurements (stepCount, metrics)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            report = json.loads(line)
        except ValueError:
            continue
        metrics = [{"metricId": m, "value": float(report[m])} for m in metric_ids if m in report]
        if metrics:
            found.append({"stepCount": str(report.get("global_step", "0")), "metrics": metrics})
    return found


class TuningJobs(JobCollection):
    def __init__(self, store: ResourceStore, workspace: Workspace, clients):
        self.workspace = workspace
        self.clients = clients  # project -> environment for the trials' Google clients
        self.table = JobTable(store, "hyperparameterTuningJobs", "HyperparameterTuningJob")
        self.table.recover()

    def create(self, parent: str, body: dict) -> dict:
        if not body.get("displayName"):
            raise errors.invalid("HyperparameterTuningJob.display_name is required.")
        study = dict(body.get("studySpec") or {})
        metrics = [{**m, "goal": _enum(StudySpec.MetricSpec.GoalType, m.get("goal"),
                                       "GOAL_TYPE_UNSPECIFIED")}
                   for m in study.get("metrics") or []]
        if not metrics or any(m["goal"] == "GOAL_TYPE_UNSPECIFIED" or not m.get("metricId")
                              for m in metrics):
            raise errors.invalid("study_spec.metrics needs at least one metric with a "
                                 "metric_id and a goal (MAXIMIZE or MINIMIZE).")
        algorithm = _enum(StudySpec.Algorithm, study.get("algorithm"), "ALGORITHM_UNSPECIFIED")
        params = parse_parameters(study.get("parameters") or [])
        suggester(params, algorithm, True)  # refuses what the algorithm cannot search
        for unsupported in ("decayCurveStoppingSpec", "convexAutomatedStoppingSpec"):
            if study.get(unsupported):
                raise errors.gcp_only(f"Early stopping with {unsupported}")
        max_trials = int(body.get("maxTrialCount") or 0)
        parallel = int(body.get("parallelTrialCount") or 0)
        if max_trials < 1 or parallel < 1:
            raise errors.invalid("max_trial_count and parallel_trial_count must be positive.")
        study.update(metrics=metrics, algorithm=algorithm)
        job_id = new_id()
        job = {**body, "studySpec": study, "trialJobSpec": validate_job_spec(
                   body.get("trialJobSpec") or {}),
               "maxTrialCount": max_trials, "parallelTrialCount": parallel,
               "maxFailedTrialCount": int(body.get("maxFailedTrialCount") or 0),
               "name": self.table.name(parent, job_id), "trials": []}
        job = self.table.add(job_id, job)
        threading.Thread(target=self._run, args=(job_id,), daemon=True,
                         name=f"tuning-{job_id}").start()
        return job

    # ---- the study loop: the only writer of the job's trials
    def _run(self, job_id: str) -> None:
        table = self.table
        try:
            job = table.update(job_id, state=table.state("RUNNING"))
            outcome, message = self._study(job_id, job)
        except Exception as exc:  # noqa: BLE001 - the job must end, whatever happened
            outcome, message = "FAILED", f"Internal error: {exc!r}"
        table.finish(job_id, outcome, message)

    def _study(self, job_id: str, job: dict) -> tuple[str, str]:
        study = job["studySpec"]
        metric_ids = [m["metricId"] for m in study["metrics"]]
        maximize = study["metrics"][0]["goal"] == "MAXIMIZE"
        best_selection = _enum(StudySpec.MeasurementSelectionType,
                               study.get("measurementSelectionType"),
                               "LAST_MEASUREMENT") == "BEST_MEASUREMENT"
        median_stop = "medianAutomatedStoppingSpec" in study
        proposer = suggester(parse_parameters(study["parameters"]), study["algorithm"],
                              maximize)
        folder = self.workspace.root / "vertex" / "training" / job_id
        trials: list[dict] = []
        running: dict[str, dict] = {}  # trial id -> {thread, cancel, outcome, metric_file}
        exhausted = False
        failed = 0
        cancel = self.table.cancels[job_id]

        def objective(trial):
            return next(m["value"] for m in trial["finalMeasurement"]["metrics"]
                        if m["metricId"] == metric_ids[0])

        while True:
            if cancel.is_set():
                for run in running.values():
                    run["cancel"].set()
            while (not cancel.is_set() and not exhausted
                   and len(running) < job["parallelTrialCount"]
                   and len(trials) < job["maxTrialCount"]
                   and not (job["maxFailedTrialCount"] and failed >= job["maxFailedTrialCount"])):
                done = [(self._values(t), objective(t)) for t in trials
                        if t["state"] == "SUCCEEDED"]
                values = proposer.suggest(done)
                if values is None:
                    exhausted = True
                    break
                trial_id = str(len(trials) + 1)
                trial = {"id": trial_id, "state": "ACTIVE", "startTime": now(),
                         "parameters": [{"parameterId": k, "value": v} for k, v in values.items()]}
                trials.append(trial)
                running[trial_id] = self._start_trial(job, trial, folder / f"trial-{trial_id}")
            for trial in trials:
                run = running.get(trial["id"])
                if run is None:
                    continue
                ended = run["outcome"] is not None  # before reading: its last report is in
                measurements = read_measurements(run["metric_file"], metric_ids)
                if measurements:
                    trial["measurements"] = measurements
                if median_stop and not run["cancel"].is_set() and self._stop_early(
                        trial, trials, metric_ids[0], maximize):
                    trial["state"] = "STOPPING"
                    run["cancel"].set()
                if not ended:
                    continue
                del running[trial["id"]]
                failed += self._close_trial(trial, run, best_selection, metric_ids[0], maximize,
                                            cancel.is_set())
            self.table.update(job_id, trials=trials)
            if not running and (cancel.is_set() or exhausted
                                or len(trials) >= job["maxTrialCount"]
                                or (job["maxFailedTrialCount"]
                                    and failed >= job["maxFailedTrialCount"])):
                break
            time.sleep(POLL_S)
        if cancel.is_set():
            return "CANCELLED", "The job was cancelled."
        succeeded = [t for t in trials if t["state"] == "SUCCEEDED"]
        if job["maxFailedTrialCount"] and failed >= job["maxFailedTrialCount"] or not succeeded:
            last = next((t for t in reversed(trials) if t["state"] == "INFEASIBLE"), {})
            return "FAILED", (f"{failed} of {len(trials)} trials failed. Last failure (trial "
                              f"{last.get('id')}): {last.get('infeasibleReason', '')}")
        return "SUCCEEDED", ""

    @staticmethod
    def _values(trial: dict) -> dict:
        return {p["parameterId"]: p["value"] for p in trial["parameters"]}

    def _start_trial(self, job: dict, trial: dict, folder) -> dict:
        metric_file = folder / "hypertune" / "output.metric"
        run = {"cancel": threading.Event(), "outcome": None, "metric_file": metric_file}
        trial_job = {"name": job["name"], "jobSpec": job["trialJobSpec"]}
        args = [f"--{p['parameterId']}={_arg(p['value'])}" for p in trial["parameters"]]

        def work():
            try:
                run["outcome"] = runner.run(self.workspace, self.clients, trial_job, folder,
                                            run["cancel"], trial=trial["id"], extra_args=args,
                                            extra_env={"CLOUD_ML_HP_METRIC_FILE":
                                                       str(metric_file)})
            except errors.VertexError as exc:
                run["outcome"] = runner.Outcome("JOB_STATE_FAILED", exc.message)
            except Exception as exc:  # noqa: BLE001 - a trial must end, whatever happened
                run["outcome"] = runner.Outcome("JOB_STATE_FAILED", f"Internal error: {exc!r}")

        run["thread"] = threading.Thread(target=work, daemon=True,
                                         name=f"trial-{job['name'][-6:]}-{trial['id']}")
        run["thread"].start()
        return run

    @staticmethod
    def _series(trial: dict, metric_id: str) -> list[tuple[int, float]]:
        return [(int(m["stepCount"]), v["value"]) for m in trial.get("measurements", [])
                for v in m["metrics"] if v["metricId"] == metric_id]

    def _stop_early(self, trial, trials, metric_id, maximize) -> bool:
        completed = [self._series(t, metric_id) for t in trials
                     if t["state"] == "SUCCEEDED" and t is not trial]
        return median_should_stop(self._series(trial, metric_id), completed, maximize)

    def _close_trial(self, trial, run, best_selection, metric_id, maximize, job_cancelled) -> int:
        """Sets the trial's end state; returns 1 when it counts as failed."""
        outcome = run["outcome"]
        trial["endTime"] = now()
        measurements = trial.get("measurements") or []
        stopped_early = trial["state"] == "STOPPING"
        if outcome.state == "JOB_STATE_FAILED" or (outcome.state == "JOB_STATE_CANCELLED"
                                                   and not stopped_early):
            trial["state"] = "INFEASIBLE"
            trial["infeasibleReason"] = outcome.message
            return 0 if job_cancelled else 1
        measurements = [m for m in measurements
                        if any(v["metricId"] == metric_id for v in m["metrics"])]
        if not measurements:
            trial["state"] = "INFEASIBLE"
            trial["infeasibleReason"] = (f"The trial reported no value for metric {metric_id!r} "
                                         f"(report it with cloudml-hypertune).")
            return 1
        final = measurements[-1]
        if best_selection:
            pick = max if maximize else min
            final = pick(measurements, key=lambda m: next(
                v["value"] for v in m["metrics"] if v["metricId"] == metric_id))
        trial["finalMeasurement"] = final
        trial["state"] = "SUCCEEDED"
        return 0

