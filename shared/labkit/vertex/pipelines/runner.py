"""Runs one pipeline job's compiled spec task by task, as Vertex AI Pipelines does.

Each DAG is walked in dependency order (ParallelFor iterations and independent tasks run
one after another: the local machine has two cores). A task is a nested DAG, an importer,
a lightweight Python component (the KFP executor in a subprocess, see launch.py) or a
Google Cloud Pipeline Component (google_ops.py). Every task gets a PipelineTaskDetail
and an ML Metadata execution; artifacts get metadata artifacts and events, all in the
run's context. Caching follows Vertex: same component spec and inputs -> the earlier
outputs are reused and the task is SKIPPED with a CACHED execution.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import tempfile
import threading

from kfp.local import placeholder_utils

from labkit.storage.paths import local_path
from labkit.vertex.metadata.engine import Metadata
from labkit.vertex.pipelines import google_ops, launch
from labkit.vertex.pipelines import spec as specs
from labkit.vertex.store import ResourceStore, new_id, now
from labkit.vertex.training import requirements
from labkit.workspace import Workspace

TASK_TIMEOUT_S = 3600
PLACEHOLDER = re.compile(r"\{\{\$\.inputs\.parameters\[['\"](.+?)['\"]\]\}\}")
SELECTOR = re.compile(r'parseJson\(string_value\)\[(["\'])(.*?)\1\]')


class TaskFailed(Exception):
    def __init__(self, task: str, message: str):
        super().__init__(message)
        self.task = task


class Cancelled(Exception):
    pass


class Run:
    def __init__(self, workspace: Workspace, store: ResourceStore, metadata: Metadata,
                 job: dict, save, clients):
        self.workspace = workspace
        self.clients = clients  # project -> environment for the tasks' Google clients
        self.store = store
        self.metadata = metadata
        self.job = job
        self.save = save  # persists self.job (the jobs engine owns the resource)
        self.spec = job["pipelineSpec"]
        self.components = self.spec.get("components", {})
        self.executors = self.spec.get("deploymentSpec", {}).get("executors", {})
        self.job_id = job["name"].rsplit("/", 1)[-1]
        self.parent = job["name"].split("/pipelineJobs/")[0]
        self.project = self.parent.split("/")[1]
        self.location = self.parent.split("/")[3]
        self.root_uri = job["runtimeConfig"]["gcsOutputDirectory"].rstrip("/")
        self.store_name = f"{self.parent}/metadataStores/default"
        self.context = job["jobDetail"]["pipelineRunContext"]["name"]
        self.cancelled = threading.Event()
        self.process = None  # the running task's process
        self.failed: list[str] = []
        self.logs = workspace.path("logs", "pipelines", self.job_id)
        self.logs.mkdir(parents=True, exist_ok=True)

    # ---- bookkeeping
    def _detail(self, name: str, parent_id: str | None, schema: str, inputs: dict,
                execution_name: str | None = None) -> dict:
        execution = self.metadata.create("executions", self.store_name, {
            "displayName": execution_name or name, "schemaTitle": schema, "state": "RUNNING",
            "metadata": {f"input:{k}": v for k, v in inputs.items()}}, None)
        self.metadata.add_to_context(self.context, [], [execution["name"]])
        detail = {"taskId": new_id(), "taskName": name, "createTime": now(),
                  "startTime": now(), "state": "RUNNING", "execution": execution,
                  "inputs": {}, "outputs": {}}
        if parent_id:
            detail["parentTaskId"] = parent_id
        self.job["jobDetail"]["taskDetails"].append(detail)
        self.save(self.job)
        return detail

    def _finish(self, detail: dict, state: str, execution_state: str, outputs: dict | None = None,
                error: str | None = None) -> None:
        extra = {f"output:{k}": v for k, v in (outputs or {}).items()}
        detail["execution"] = self.metadata.patch(
            "executions", detail["execution"]["name"],
            {"state": execution_state, "metadata": extra}, "state,metadata")
        detail.update(state=state, endTime=now())
        if error:
            detail["error"] = {"code": 9, "message": error}
        self.save(self.job)

    def _record_artifacts(self, detail: dict, direction: str, artifacts: dict, create: bool):
        events, names = [], []
        for key, items in artifacts.items():
            resources = []
            for item in items:
                found = self.metadata.find("artifacts", item["name"])
                if found is None and create:
                    parent, _, rid = item["name"].rpartition("/artifacts/")
                    found = self.metadata.create("artifacts", parent, {
                        "displayName": key, "uri": item["uri"], "state": "LIVE",
                        "schemaTitle": item["type"]["schemaTitle"],
                        "schemaVersion": item["type"].get("schemaVersion", "0.0.1"),
                        "metadata": item.get("metadata", {})}, rid)
                if found is None:
                    continue
                resources.append(found)
                names.append(found["name"])
                events.append({"artifact": found["name"], "type": direction})
            detail["inputs" if direction == "INPUT" else "outputs"][key] = {"artifacts": resources}
        if names:
            self.metadata.add_to_context(self.context, names, [])
            self.metadata.add_events(detail["execution"]["name"], events)

    # ---- the run
    def execute(self) -> None:
        root = self.spec["root"]
        params = {}
        for key, definition in root.get("inputDefinitions", {}).get("parameters", {}).items():
            value = self.job["runtimeConfig"].get("parameterValues", {}).get(
                key, definition.get("defaultValue"))
            if value is not None:
                params[key] = specs.parameter_value(value, definition.get("parameterType"))
        # The run's execution is named after the job and is in its pipeline's context too:
        # get_pipeline_df(pipeline=...) lists system.Run executions in_context(<the
        # pipeline's context>), one row per run named by the execution.
        detail = self._detail(self.spec["pipelineInfo"]["name"], None, "system.Run", params,
                              execution_name=self.job_id)
        self.metadata.add_to_context(self.job["jobDetail"]["pipelineContext"]["name"], [],
                                     [detail["execution"]["name"]])
        try:
            out_params, out_artifacts = self.run_dag(root, params, {}, detail["taskId"])
        except Cancelled:
            self._finish(detail, "CANCELLED", "CANCELLED")
            raise
        if self.failed:
            self._finish(detail, "FAILED", "FAILED")
            raise TaskFailed(self.failed[0], "The DAG failed because some tasks failed. The "
                             f"failed tasks are: [{', '.join(self.failed)}].")
        # The pipeline's outputs (a Metrics artifact, say) are the run's: the metric.* columns
        # of get_pipeline_df.
        self._record_artifacts(detail, "OUTPUT", out_artifacts, create=False)
        self._finish(detail, "SUCCEEDED", "COMPLETE", out_params)

    def run_dag(self, component: dict, params: dict, artifacts: dict, parent_id: str) -> tuple:
        tasks = component["dag"]["tasks"]
        results: dict[str, dict] = {}  # task -> {"parameters", "artifacts", "state", "error"}
        for name in _order(tasks):
            if self.cancelled.is_set():
                raise Cancelled()
            task = tasks[name]
            all_done = task.get("triggerPolicy", {}).get("strategy") == \
                "ALL_UPSTREAM_TASKS_COMPLETED"
            if self.failed and not all_done:
                continue  # fail fast: nothing new starts after a failure but exit handlers
            results[name] = self.run_task(name, task, params, artifacts, results, parent_id)
        outputs = component["dag"].get("outputs", {})
        out_params, out_artifacts = {}, {}
        for key, source in outputs.get("parameters", {}).items():
            selectors = ([source["valueFromParameter"]] if "valueFromParameter" in source else
                         source.get("valueFromOneof", {}).get("parameterSelectors", []))
            for sel in selectors:
                produced = results.get(sel["producerSubtask"], {}).get("parameters", {})
                if sel["outputParameterKey"] in produced:
                    out_params[key] = produced[sel["outputParameterKey"]]
                    break
        for key, source in outputs.get("artifacts", {}).items():
            for sel in source.get("artifactSelectors", []):
                produced = results.get(sel["producerSubtask"], {}).get("artifacts", {})
                if sel["outputArtifactKey"] in produced:
                    out_artifacts[key] = produced[sel["outputArtifactKey"]]
                    break
        return out_params, out_artifacts

    def _inputs(self, task: dict, params: dict, artifacts: dict, results: dict) -> tuple:
        values, arts = {}, {}
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in source:
                if source["componentInputParameter"] not in params:
                    continue
                value = params[source["componentInputParameter"]]
            elif "taskOutputParameter" in source:
                ref = source["taskOutputParameter"]
                produced = results.get(ref["producerTask"], {}).get("parameters", {})
                if ref["outputParameterKey"] not in produced:
                    continue
                value = produced[ref["outputParameterKey"]]
            elif "runtimeValue" in source:
                value = source["runtimeValue"].get("constant")
            elif "taskFinalStatus" in source:
                producer = results.get(source["taskFinalStatus"]["producerTask"], {})
                value = {"state": producer.get("state", "SUCCEEDED"),
                         "error": {"code": 9, "message": producer.get("error", "")}
                         if producer.get("error") else {},
                         "pipelineJobResourceName": self.job["name"],
                         "pipelineTaskName": source["taskFinalStatus"]["producerTask"]}
            else:
                continue
            selector = source.get("parameterExpressionSelector")
            if selector:
                m = SELECTOR.fullmatch(selector)
                if not m:
                    raise TaskFailed("", f"Unsupported parameter selector {selector!r}.")
                value = (json.loads(value) if isinstance(value, str) else value)[m[2]]
            values[key] = value
        # Constants may embed other inputs ("{{$.inputs.parameters['x']}}" inside a list) and
        # the run's own placeholders.
        known = self._run_placeholders()
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if "runtimeValue" in source and key in values:
                values[key] = _substitute(values[key], values, known)
        for key, source in task.get("inputs", {}).get("artifacts", {}).items():
            if "componentInputArtifact" in source:
                found = artifacts.get(source["componentInputArtifact"])
            else:
                ref = source.get("taskOutputArtifact", {})
                found = results.get(ref.get("producerTask"), {}).get("artifacts", {}).get(
                    ref.get("outputArtifactKey"))
            if found:
                arts[key] = found
        return values, arts

    def _run_placeholders(self) -> dict:
        """The run's own placeholders, which Vertex resolves in constants and defaults (GCPC
        components default `project` to {{$.pipeline_google_cloud_project_id}})."""
        return {"{{$.pipeline_job_name}}": self.job["name"],
                "{{$.pipeline_job_uuid}}": self.job_id, "{{$.pipeline_root}}": self.root_uri,
                "{{$.pipeline_google_cloud_project_id}}": self.project,
                "{{$.pipeline_google_cloud_location}}": self.location,
                "{{$.pipeline_service_account}}": self.job.get("serviceAccount") or "",
                "{{$.pipeline_network}}": self.job.get("network") or "",
                "{{$.pipeline_encryption_key_name}}":
                    (self.job.get("encryptionSpec") or {}).get("kmsKeyName", ""),
                "{{$.pipeline_persistent_resource_id}}": ""}  # no persistent resource locally

    def run_task(self, name: str, task: dict, params: dict, artifacts: dict, results: dict,
                 parent_id: str) -> dict:
        component = self.components[task["componentRef"]["name"]]
        values, arts = self._inputs(task, params, artifacts, results)
        definitions = component.get("inputDefinitions", {}).get("parameters", {})
        for key, definition in definitions.items():
            if key not in values and "defaultValue" in definition:
                values[key] = _substitute(definition["defaultValue"], values,
                                          self._run_placeholders())
            if key in values:
                values[key] = specs.parameter_value(values[key], definition.get("parameterType"))
        display = task.get("taskInfo", {}).get("name", name)
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition and not specs.evaluate_condition(condition, values):
            detail = self._detail(display, parent_id, "system.DagExecution"
                                  if "dag" in component else "system.ContainerExecution", values)
            self._finish(detail, "NOT_TRIGGERED", "CANCELLED")
            return {"parameters": {}, "artifacts": {}, "state": "NOT_TRIGGERED"}
        if "dag" in component:
            return self._run_dag_task(display, task, component, values, arts, parent_id)
        return self._run_executor_task(display, task, component, values, arts, parent_id)

    def _run_dag_task(self, display, task, component, values, arts, parent_id) -> dict:
        detail = self._detail(display, parent_id, "system.DagExecution", values)
        self._record_artifacts(detail, "INPUT", arts, create=False)
        failed_before = len(self.failed)
        iterator = task.get("parameterIterator")
        try:
            if iterator:
                items = iterator["items"]
                listed = (json.loads(items["raw"]) if "raw" in items
                          else values[items["inputParameter"]])
                if isinstance(listed, str):
                    listed = json.loads(listed)
                collected_p: dict = {}
                collected_a: dict = {}
                for item in listed:
                    p, a = self.run_dag(component, {**values, iterator["itemInput"]: item}, arts,
                                        detail["taskId"])
                    for k, v in p.items():
                        collected_p.setdefault(k, []).append(v)
                    for k, v in a.items():
                        collected_a.setdefault(k, []).extend(v)
                out_p, out_a = collected_p, collected_a
            elif "artifactIterator" in task:
                raise TaskFailed(display, "ParallelFor over artifacts is not available on "
                                          "the local Vertex AI Pipelines; it runs with "
                                          "LAB_BACKEND=gcp.")
            else:
                out_p, out_a = self.run_dag(component, values, arts, detail["taskId"])
        except TaskFailed as exc:
            self.failed.append(display)
            return self._failed(detail, str(exc))
        except Cancelled:
            self._finish(detail, "CANCELLED", "CANCELLED")
            raise
        if len(self.failed) > failed_before:
            return self._failed(detail, f"Failed tasks: {', '.join(self.failed[failed_before:])}")
        self._record_artifacts(detail, "OUTPUT", out_a, create=False)
        self._finish(detail, "SUCCEEDED", "COMPLETE", out_p)
        return {"parameters": out_p, "artifacts": out_a, "state": "SUCCEEDED"}

    def _failed(self, detail: dict, error: str) -> dict:
        """Marks a task failed and gives its outcome to the task that contains it."""
        self._finish(detail, "FAILED", "FAILED", error=error)
        return {"parameters": {}, "artifacts": {}, "state": "FAILED", "error": error}

    def _run_executor_task(self, display, task, component, values, arts, parent_id) -> dict:
        executor = self.executors[component["executorLabel"]]
        detail = self._detail(display, parent_id, "system.ContainerExecution", values)
        self._record_artifacts(detail, "INPUT", arts, create=False)
        caching = task.get("cachingOptions", {}).get("enableCache", False)
        key = _cache_key(component, executor, values, arts)
        cached = self.store.get("pipelineCache", key) if caching else None
        if cached and all(self.metadata.find("artifacts", a["name"])
                          for items in cached["artifacts"].values() for a in items):
            self._record_artifacts(detail, "OUTPUT", cached["artifacts"], create=False)
            self._finish(detail, "SKIPPED", "CACHED", cached["parameters"])
            return {"parameters": cached["parameters"], "artifacts": cached["artifacts"],
                    "state": "SKIPPED"}
        try:
            if "importer" in executor:
                out_p, out_a = self._importer(executor["importer"], values)
            else:
                out_p, out_a = self._container(display, detail, component, executor["container"],
                                               values, arts)
        except TaskFailed as exc:
            self.failed.append(display)
            return self._failed(detail, str(exc))
        except Cancelled:
            self._finish(detail, "CANCELLED", "CANCELLED")
            raise
        self._record_artifacts(detail, "OUTPUT", out_a, create=True)
        self._finish(detail, "SUCCEEDED", "COMPLETE", out_p)
        if caching:
            self.store.put("pipelineCache", key, {"parameters": out_p, "artifacts": out_a,
                                                  "pipelineJob": self.job["name"]})
        return {"parameters": out_p, "artifacts": out_a, "state": "SUCCEEDED"}

    def _artifact_name(self) -> str:
        return f"{self.store_name}/artifacts/{new_id()}"

    def _importer(self, importer: dict, values: dict) -> tuple:
        uri = importer.get("artifactUri", {})
        uri = uri.get("constant") or values.get(uri.get("runtimeParameter", ""), "")
        artifact = {"name": self._artifact_name(), "uri": uri,
                    "metadata": _fill(importer.get("metadata", {}), values),
                    "type": importer["typeSchema"]}
        return {}, {"artifact": [artifact]}

    def _container(self, display, detail, component, container, values, arts) -> tuple:
        task_uri = f"{self.root_uri}/{self.project}/{self.job_id}/{display}_" \
                   f"{detail['execution']['name'].rsplit('/', 1)[-1]}"
        outputs = component.get("outputDefinitions", {})
        out_artifacts = {
            key: {"artifacts": [{"name": self._artifact_name(),
                                 "type": d["artifactType"], "uri": f"{task_uri}/{key}",
                                 "metadata": {}}]}
            for key, d in outputs.get("artifacts", {}).items()}
        out_params = {key: {"outputFile": str(local_path(f"{task_uri}/{key}", self.workspace))}
                      for key in outputs.get("parameters", {})}
        output_file = str(local_path(f"{task_uri}/executor_output.json", self.workspace))
        executor_input = {
            "inputs": {"parameterValues": values,
                       "artifacts": {k: {"artifacts": v} for k, v in arts.items()}},
            "outputs": {"artifacts": out_artifacts, "parameters": out_params,
                        "outputFile": output_file}}
        command = list(container.get("command", [])) + list(container.get("args", []))
        joined = " ".join(command)
        log = self.logs / f"{display}.log"
        with tempfile.TemporaryDirectory(prefix="labkit-task-") as tmp:
            def resolved(arguments: list) -> list[str]:
                return placeholder_utils.replace_placeholders(
                    full_command=list(arguments), executor_input_dict=executor_input,
                    pipeline_resource_name=self.job["name"], task_resource_name=display,
                    pipeline_root=self.root_uri, unique_pipeline_id=self.job_id)

            if specs.LIGHTWEIGHT in joined:
                # Vertex pip-installs packages_to_install in the task's container; offline the
                # task runs on this environment's packages, so a pin they miss fails the task
                # (it would silently train with other versions otherwise).
                problems = requirements.unmet(requirements.pip_installs(joined))
                if problems:
                    raise TaskFailed(display, requirements.refusal(
                        problems, f"Component {display} pip-installs"))
                source = os.path.join(tmp, "ephemeral_component.py")
                with open(source, "w") as f:
                    f.write(container["command"][-1])
                argv = ["python", source, *resolved(container.get("args", []))]
            elif specs.REMOTE_RUNNER in command:
                # GCPC's own launcher (dataset and AutoML training ops): it drives the Vertex
                # AI SDK, which launch.py points at the local Vertex AI.
                after = command[command.index(specs.REMOTE_RUNNER) + 1:]
                argv = ["google", specs.REMOTE_RUNNER, *resolved(after)]
            else:
                module = next((c for c in command if c.startswith(specs.GOOGLE_LAUNCHER)), None)
                if module not in google_ops.SUPPORTED:
                    what = f"Google Cloud Pipeline Component {module}" if module else \
                        f"Container component {display} (image {container.get('image')})"
                    raise TaskFailed(display, f"{what} is not available on the local Vertex AI "
                                              f"Pipelines; it runs with LAB_BACKEND=gcp.")
                input_file = os.path.join(tmp, "executor_input.json")
                with open(input_file, "w") as f:
                    json.dump(executor_input, f)
                argv = ["google", module, input_file]
            self._spawn(display, argv, container, log, tmp)
        result = {}
        if os.path.exists(output_file):
            with open(output_file) as f:
                result = json.load(f)
        params = dict(result.get("parameterValues", {}))
        for key, d in outputs.get("parameters", {}).items():
            if key not in params and os.path.exists(out_params[key]["outputFile"]):
                with open(out_params[key]["outputFile"]) as f:
                    text = f.read()
                params[key] = text if d.get("parameterType") == "STRING" else json.loads(text)
        for key, d in outputs.get("parameters", {}).items():
            if key in params:
                params[key] = specs.parameter_value(params[key], d.get("parameterType"))
        artifacts = {}
        for key, holder in out_artifacts.items():
            produced = result.get("artifacts", {}).get(key, {}).get("artifacts", [])
            merged = []
            for i, artifact in enumerate(holder["artifacts"]):
                update = produced[i] if i < len(produced) else {}
                merged.append({**artifact, "uri": update.get("uri") or artifact["uri"],
                               "metadata": {**artifact["metadata"], **update.get("metadata", {})}})
            artifacts[key] = merged
        return params, artifacts

    def _spawn(self, display: str, argv: list[str], container: dict, log, cwd: str) -> None:
        clients = self.clients(self.project)
        env = {**os.environ, **task_environment(self.workspace, clients, self.project,
                                                self.location),
               **{e["name"]: e["value"] for e in container.get("env", [])},
               "VERTEX_AI_PIPELINES_RUN_LABELS": json.dumps(self.job.get("labels", {}))}
        self.process = _forkserver().Process(target=launch.child,
                                             args=(argv, env, cwd, str(log)), daemon=True)
        self.process.start()
        self.process.join(TASK_TIMEOUT_S)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
        code = self.process.exitcode
        if self.cancelled.is_set():
            raise Cancelled()
        if code != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            raise TaskFailed(display, f"The replica workerpool0-0 exited with a non-zero status "
                                      f"of {code}. Termination reason: Error. Task log "
                                      f"(last lines; full log in the workspace at "
                                      f"logs/pipelines/{self.job_id}/{display}.log):\n"
                             + "\n".join(tail))

    def cancel(self) -> None:
        self.cancelled.set()
        if self.process is not None and self.process.exitcode is None:
            self.process.kill()


_server: list = []
PRELOAD = ["labkit.vertex.pipelines.launch", "labkit.vertex.pipelines.google_ops",
           "google_cloud_pipeline_components.container.v1.aiplatform.remote_runner",
           "kfp.dsl.executor_main", "kfp.dsl", "google.cloud.aiplatform", "google.cloud.bigquery",
           "pandas", "sklearn.base"]


def _forkserver():
    """A fork server with the task-side imports done once (started on first use)."""
    if not _server:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        _server.append(context)
    return _server[0]


def task_environment(workspace: Workspace, clients: dict, project: str, location: str) -> dict:
    """The environment a task's clients need to reach this workspace's services."""
    return {"LAB_WORKSPACE": str(workspace.root), "LAB_BACKEND": "local",
            "LAB_LOCAL_PROJECT": project, "CLOUD_ML_PROJECT_ID": project,
            "CLOUD_ML_REGION": location, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
            "LAB_JOB_OF_SERVICES": "1",  # labkit.env.JOB_OF_SERVICES: never restart them
            **clients}


def _order(tasks: dict) -> list[str]:
    """Task names in dependency order (explicit dependentTasks and data producers)."""
    needs = {}
    for name, task in tasks.items():
        deps = set(task.get("dependentTasks", []))
        for kind in ("parameters", "artifacts"):
            for source in task.get("inputs", {}).get(kind, {}).values():
                for ref in ("taskOutputParameter", "taskOutputArtifact", "taskFinalStatus"):
                    if ref in source:
                        deps.add(source[ref]["producerTask"])
        needs[name] = deps & set(tasks)
    ordered, done = [], set()
    while len(ordered) < len(tasks):
        ready = sorted(n for n in tasks if n not in done and needs[n] <= done)
        if not ready:
            raise TaskFailed("", "The pipeline DAG has a cycle.")
        ordered += ready
        done |= set(ready)
    return ordered


def _cache_key(component: dict, executor: dict, values: dict, arts: dict) -> str:
    material = {"component": component, "executor": executor, "parameters": values,
                "artifacts": {k: [{"uri": a["uri"], "metadata": a.get("metadata", {})}
                                  for a in v] for k, v in arts.items()}}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _substitute(value, values: dict, known: dict):
    """Resolves placeholders inside a constant, as the Vertex backend does."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole[1] in values:
            return values[whole[1]]
        for placeholder, replacement in known.items():
            value = value.replace(placeholder, replacement)
        return PLACEHOLDER.sub(lambda m: str(values.get(m[1], m[0])), value)
    if isinstance(value, list):
        return [_substitute(v, values, known) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, values, known) for k, v in value.items()}
    return value


IMPORTER_PARAMETER = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")


def _fill(value, values: dict):
    """An importer's metadata with its pipeline-parameter placeholders
    ({{$.inputs.parameters['name']}}, as KFP compiles dsl.importer(metadata={k: param}))
    replaced by the parameters' values."""
    if isinstance(value, dict):
        return {_fill(k, values): _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, str):
        whole = IMPORTER_PARAMETER.fullmatch(value)
        if whole:
            return values.get(whole[1], value)
        return IMPORTER_PARAMETER.sub(lambda m: str(values.get(m[1], m[0])), value)
    return value
