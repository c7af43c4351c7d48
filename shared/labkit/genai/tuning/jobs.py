"""Vertex AI tuningJobs: supervised tuning of the local Gemma behind Gemini's model ids.

create() checks the request as Vertex does (base model, hyperparameter ranges, datasets read
from the local Cloud Storage and validated line by line), stores the job and starts the
trainer child process (labkit.genai.tuning.trainer) from a thread; the thread follows its
progress into the job (tuningJobMetadata), and on success registers the tuned model in the
Model Registry and deploys it on an endpoint of its own, as Vertex does, so that
generate_content on tunedModel.endpoint answers with the adapters merged.

Sources for the checks: supported models and adapter sizes per model from
docs.cloud.google.com/vertex-ai/generative-ai/docs/models/gemini-supervised-tuning (the
limitations tables: Gemini 2.5 Flash and Flash-Lite 1, 2, 4, 8, 16; Gemini 2.5 Pro and
2.0 Flash(-Lite) 1, 2, 4, 8), the request shape from google-genai's tunings.py and
google/cloud/aiplatform_v1beta1/types/tuning_job.py (AdapterSize numbers), and
vertexai/tuning/_supervised_tuning.py (learning_rate and tuning_mode are for open models).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from labkit.genai.errors import GenAIError, InvalidArgument, NotLocal
from labkit.genai.tuning import datasets, lora
from labkit.services.files import write_atomic
from labkit.vertex import errors
from labkit.vertex.store import new_id, now
from labkit.vertex.training.contract import base_environ
from labkit.vertex.training.job_table import JobCollection, JobTable
from labkit.vertex.training.runner import tail

ADAPTER_SIZES = {"gemini-2.5-flash": (1, 2, 4, 8, 16), "gemini-2.5-flash-lite": (1, 2, 4, 8, 16),
                 "gemini-2.5-pro": (1, 2, 4, 8), "gemini-2.0-flash-001": (1, 2, 4, 8),
                 "gemini-2.0-flash-lite-001": (1, 2, 4, 8)}
# AdapterSize in aiplatform v1/v1beta1 (the Vertex SDK sends the numbers: enum-encoding=int)
ADAPTER_ENUM = {"ADAPTER_SIZE_ONE": 1, "ADAPTER_SIZE_TWO": 2, "ADAPTER_SIZE_FOUR": 4,
                "ADAPTER_SIZE_EIGHT": 8, "ADAPTER_SIZE_SIXTEEN": 16,
                "ADAPTER_SIZE_THIRTY_TWO": 32}
ADAPTER_NUMBERS = {1: 1, 6: 2, 2: 4, 3: 8, 4: 16, 5: 32}
# Local choices where Vertex picks by itself (it sizes epochs and the adapter to the data):
DEFAULT_ADAPTER = 4
DEFAULT_EPOCHS = 3
MAX_EPOCHS = 100  # a local cap: Google's pages we found give no upper bound, only "positive"
BATCH_SIZE = 4
SPEC_KEYS = {"trainingDatasetUri", "validationDatasetUri", "hyperParameters", "tuningMode",
             "exportLastCheckpointOnly", "evaluationConfig"}
HYPER_KEYS = {"epochCount", "adapterSize", "learningRateMultiplier", "learningRate",
              "batchSize"}
BODY_KEYS = {"baseModel", "supervisedTuningSpec", "tunedModelDisplayName", "description",
             "labels", "preTunedModel", "preferenceOptimizationSpec", "distillationSpec",
             "reinforcementTuningSpec", "customBaseModel", "encryptionSpec", "serviceAccount",
             "outputUri", "evaluationConfig", "veoTuningSpec", "partnerModelTuningSpec",
             "fullFineTuningSpec"}
POLL_S = 0.2


class TuningJobs(JobCollection):
    def __init__(self, store, metadata, objects, workspace, engine):
        self.store = store  # the Vertex resource store: jobs, the tuned model, its endpoint
        self.metadata = metadata  # labkit.vertex.metadata.engine.Metadata: the experiment
        self.objects = objects  # labkit.storage.engine.Store: where datasets are read
        self.workspace = workspace
        self.engine = engine  # the base labkit.genai.engine.Engine (its tokenizer counts)
        self.table = JobTable(store, "tuningJobs", "TuningJob")
        self.table.recover()

    def folder(self, job_id: str) -> Path:
        return self.workspace.root / "genai" / "tuning" / job_id

    # ---- create

    def create(self, parent: str, body: dict) -> dict:
        if not isinstance(body, dict):
            raise InvalidArgument("The request body must be a TuningJob object.")
        unknown = set(body) - BODY_KEYS
        if unknown:
            raise InvalidArgument(f"Invalid JSON payload received. Unknown name "
                                  f"\"{sorted(unknown)[0]}\": Cannot find field.")
        for key, feature in (("preTunedModel", "Continuous tuning of a tuned model"),
                             ("preferenceOptimizationSpec", "Preference tuning"),
                             ("distillationSpec", "Distillation"),
                             ("reinforcementTuningSpec", "Reinforcement tuning"),
                             ("veoTuningSpec", "Veo tuning"),
                             ("partnerModelTuningSpec", "Partner model tuning"),
                             ("fullFineTuningSpec", "Full fine-tuning"),
                             ("customBaseModel", "Tuning a custom base model"),
                             ("encryptionSpec", "Customer-managed encryption keys"),
                             ("evaluationConfig", "Evaluation after tuning")):
            if body.get(key):
                raise NotLocal(feature)
        base = str(body.get("baseModel") or "").removeprefix("publishers/google/models/")
        if not base:
            raise InvalidArgument("base_model is required.")
        if base not in ADAPTER_SIZES:
            raise InvalidArgument(f"Base model {base} is not supported for supervised tuning. "
                                  f"Supported base models: {', '.join(ADAPTER_SIZES)}.")
        spec = body.get("supervisedTuningSpec")
        if not isinstance(spec, dict) or not spec.get("trainingDatasetUri"):
            raise InvalidArgument("supervised_tuning_spec.training_dataset_uri is required.")
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise InvalidArgument(f"Invalid JSON payload received. Unknown name "
                                  f"\"{sorted(unknown)[0]}\" at 'supervised_tuning_spec'.")
        if spec.get("evaluationConfig"):
            raise NotLocal("Evaluation after tuning (evaluationConfig)")
        if spec.get("tuningMode") not in (None, 0, "TUNING_MODE_UNSPECIFIED", 2,
                                          "TUNING_MODE_PEFT_ADAPTER"):
            raise InvalidArgument(f"tuning_mode {spec['tuningMode']} can only be used with "
                                  f"open models; {base} is tuned with adapters (PEFT).")
        rank, epochs, multiplier = self._hyper_parameters(base, spec.get("hyperParameters"))
        display = body.get("tunedModelDisplayName") or f"{base}-tuned-{time.strftime('%Y%m%d')}"
        if not isinstance(display, str) or len(display) > 128:
            raise InvalidArgument("tuned_model_display_name is at most 128 characters.")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict):
            raise InvalidArgument("labels must be a map of strings.")

        train_uri = spec["trainingDatasetUri"]
        train = datasets.parse(train_uri, self._read(train_uri, "training"))
        validation_uri = spec.get("validationDatasetUri")
        validation = datasets.parse(validation_uri, self._read(validation_uri, "validation"),
                                    training=False) if validation_uri else []
        sequences, cut = self._sequences(train)
        stats = datasets.statistics(train, sequences, cut, epochs, BATCH_SIZE)

        job_id = new_id()
        hyper = {"epochCount": str(epochs), "adapterSize": _adapter_name(rank),
                 "learningRateMultiplier": multiplier}
        job = {"name": self.table.name(parent, job_id), "baseModel": base,
               "tunedModelDisplayName": display, "description": body.get("description", ""),
               "labels": labels,
               "supervisedTuningSpec": {
                   "trainingDatasetUri": train_uri, "hyperParameters": hyper,
                   **({"validationDatasetUri": validation_uri} if validation_uri else {})},
               "tuningDataStats": {"supervisedTuningDataStats": stats},
               "tuningJobMetadata": {"completedEpochCount": "0", "completedStepCount": "0"}}
        folder = self.folder(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "spec.json", json.dumps({
            "base_model": base, "rank": rank, "epochs": epochs, "batch_size": BATCH_SIZE,
            "learning_rate": lora.BASE_LEARNING_RATE * multiplier, "seed": 0,
            "train": [_plain(e) for e in train], "validation": [_plain(e) for e in validation]}))
        job = self.table.add(job_id, job)
        threading.Thread(target=self._run, args=(job_id,), daemon=True,
                         name=f"tuning-job-{job_id}").start()
        return job

    def _hyper_parameters(self, base: str, raw) -> tuple[int, int, float]:
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise InvalidArgument("hyper_parameters must be an object.")
        unknown = set(raw) - HYPER_KEYS
        if unknown:
            raise InvalidArgument(f"Invalid JSON payload received. Unknown name "
                                  f"\"{sorted(unknown)[0]}\" at 'hyper_parameters'.")
        for key in ("learningRate", "batchSize"):
            if raw.get(key) is not None:
                raise InvalidArgument(f"hyper_parameters.{_snake(key)} can only be used with "
                                      f"open models; for {base} set learning_rate_multiplier.")
        size = raw.get("adapterSize")
        if size in (None, 0, "ADAPTER_SIZE_UNSPECIFIED"):
            rank = DEFAULT_ADAPTER
        elif size in ADAPTER_ENUM:
            rank = ADAPTER_ENUM[size]
        elif isinstance(size, int) and not isinstance(size, bool) and size in ADAPTER_NUMBERS:
            rank = ADAPTER_NUMBERS[size]
        else:
            raise InvalidArgument(f"Invalid value at 'hyper_parameters.adapter_size': {size!r}")
        if rank not in ADAPTER_SIZES[base]:
            raise InvalidArgument(f"Adapter size {rank} is not supported for {base}. Supported "
                                  f"values are {', '.join(map(str, ADAPTER_SIZES[base]))}.")
        epochs = raw.get("epochCount")
        if epochs is None:
            epochs = DEFAULT_EPOCHS
        try:
            epochs = int(epochs)
        except (TypeError, ValueError):
            raise InvalidArgument(f"Invalid value at 'hyper_parameters.epoch_count': "
                                  f"{raw['epochCount']!r}") from None
        if not 1 <= epochs <= MAX_EPOCHS:
            raise InvalidArgument(f"epoch_count must be between 1 and {MAX_EPOCHS}; got "
                                  f"{epochs}.")
        multiplier = raw.get("learningRateMultiplier")
        multiplier = 1.0 if multiplier is None else multiplier
        if isinstance(multiplier, bool) or not isinstance(multiplier, int | float) \
                or not multiplier > 0:
            raise InvalidArgument(f"learning_rate_multiplier must be a positive number; got "
                                  f"{multiplier!r}.")
        return rank, epochs, float(multiplier)

    def _read(self, uri: str, what: str) -> bytes:
        if not isinstance(uri, str) or not uri.startswith("gs://") or "/" not in uri[5:]:
            raise InvalidArgument(f"The {what} dataset must be a gs://BUCKET/OBJECT URI of a "
                                  f"JSONL file; got {uri!r}.")
        bucket, _, name = uri[5:].partition("/")
        from labkit.services.http import HttpError

        try:
            self.objects.get_bucket(bucket)
            return self.objects.read_range(bucket, name, None)[0]
        except HttpError:
            raise InvalidArgument(f"The {what} dataset {uri} does not exist or cannot be "
                                  f"read.") from None

    def _sequences(self, examples):
        self.engine.model  # noqa: B018 - loads the tokenizer
        tokenizer = self.engine.tokenizer
        sequences, cut = [], []
        for i, e in enumerate(examples):
            seq = lora.sequence(tokenizer, e.system, e.turns)
            if len(seq.tokens) > lora.MAX_SEQUENCE:
                cut.append(i)
            sequences.append(lora.truncated(seq))
        return sequences, cut

    # ---- running

    def _run(self, job_id: str) -> None:
        table = self.table
        folder = self.folder(job_id)
        table.update(job_id, state=table.state("RUNNING"))
        log = folder / "trainer.log"
        try:
            outcome, message = self._train(job_id, folder, log)
            if outcome == "SUCCEEDED":
                tuned = self._publish(job_id, folder)
                table.finish(job_id, "SUCCEEDED", tunedModel=tuned,
                             experiment=self._experiment(job_id, folder))
            else:
                table.finish(job_id, outcome, message)
        except (GenAIError, lora.AdapterError) as exc:
            table.finish(job_id, "FAILED", str(exc))
        except Exception as exc:  # noqa: BLE001 - the job must end, whatever happened
            table.finish(job_id, "FAILED", f"Internal error: {exc!r}")

    def _train(self, job_id: str, folder: Path, log: Path) -> tuple[str, str]:
        root = str(Path(lora.__file__).resolve().parents[3])  # the folder holding labkit
        env = {**base_environ(), "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "2"}
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "labkit.genai.tuning.trainer",
                                     str(folder)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        seen = None
        try:
            while proc.poll() is None:
                if self.table.cancel_requested(job_id):
                    return "CANCELLED", "The tuning job was cancelled."
                seen = self._follow(job_id, folder, seen)
                time.sleep(POLL_S)
            self._follow(job_id, folder, seen)
            if proc.returncode != 0:
                return "FAILED", (f"The tuning job's trainer exited with status "
                                  f"{proc.returncode}. Its log: {log}\n{tail(log)}")
            return "SUCCEEDED", ""
        finally:
            if proc.poll() is None:
                import os
                import signal

                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def _follow(self, job_id: str, folder: Path, seen):
        progress = read_progress(folder)
        if progress is None or progress == seen:
            return seen
        self.table.update(job_id, tuningJobMetadata={
            "completedEpochCount": str(progress.get("epoch", 0)),
            "completedStepCount": str(progress.get("step", 0))},
            labkitProgress=summary(progress))
        return progress

    def _publish(self, job_id: str, folder: Path) -> dict:
        """The tuned model in the Model Registry, deployed on a new endpoint."""
        lora.load(folder)  # checks the adapters' checksum before anything names them
        job = self.store.get("tuningJobs", job_id)
        parent = job["name"].rsplit("/tuningJobs/", 1)[0]
        model_id, endpoint_id, deployed_id = new_id(), new_id(), new_id()
        model = f"{parent}/models/{model_id}"
        endpoint = f"{parent}/endpoints/{endpoint_id}"
        stamp = now()
        version = {"name": model, "versionId": "1", "displayName": job["tunedModelDisplayName"],
                   "description": job.get("description", ""), "labels": {
                       "google-vertex-llm-tuning-base-model-id": job["baseModel"].replace(
                           ".", "-"), "google-vertex-llm-tuning-job-id": job_id},
                   "versionAliases": ["default"], "createTime": stamp, "updateTime": stamp,
                   "versionCreateTime": stamp, "versionUpdateTime": stamp, "etag": new_id(),
                   "modelSourceInfo": {"sourceType": "GENIE"},
                   "baseModelSource": {"genieSource": {
                       "baseModelUri": f"publishers/google/models/{job['baseModel']}"}},
                   "deployedModels": [{"endpoint": endpoint, "deployedModelId": deployed_id}]}
        with self.store.lock:
            self.store.put("models", model_id, {
                "id": model_id, "parent": parent, "versions": [version], "nextVersion": 2,
                "evaluations": [], "createTime": stamp})
            self.store.put("endpoints", endpoint_id, {
                "name": endpoint, "displayName": job["tunedModelDisplayName"],
                "description": f"Tuned from {job['baseModel']} by {job['name']}",
                "labels": {}, "trafficSplit": {deployed_id: 100}, "createTime": stamp,
                "updateTime": stamp, "etag": new_id(),
                "deployedModels": [{"id": deployed_id, "model": model, "modelVersionId": "1",
                                    "displayName": job["tunedModelDisplayName"],
                                    "createTime": stamp, "automaticResources": {}}]})
        progress = read_progress(folder) or {}
        return {"model": f"{model}@1", "endpoint": endpoint, "checkpoints": [{
            "checkpointId": "1", "epoch": str(progress.get("epoch", 0)),
            "step": str(progress.get("step", 0)), "endpoint": endpoint}]}

    def _experiment(self, job_id: str, folder: Path) -> str:
        """The job's Vertex AI Experiment (TuningJob.experiment), with one run holding the
        hyperparameters and the final metrics under Vertex's names for tuning metrics
        (/train_total_loss, /eval_total_loss, /..._fraction_of_correct_next_step_preds),
        so aiplatform.get_experiment_df() shows them; every step's losses stay in the job
        folder's progress.json."""
        from labkit.vertex.metadata.engine import store_name

        job = self.store.get("tuningJobs", job_id)
        progress = read_progress(folder) or {}
        store = store_name(job["name"].rsplit("/tuningJobs/", 1)[0])
        experiment_id = f"tuning-experiment-{job_id}"
        metrics = {}
        if progress.get("train"):
            last = progress["train"][-1]
            metrics.update({"/train_total_loss": last["loss"],
                            "/train_fraction_of_correct_next_step_preds":
                                last["fractionOfCorrectNextStepPreds"]})
        if len(progress.get("eval") or []) > 1:
            base, last = progress["eval"][0], progress["eval"][-1]
            metrics.update({"/eval_total_loss": last["loss"],
                            "/eval_fraction_of_correct_next_step_preds":
                                last["fractionOfCorrectNextStepPreds"],
                            "/eval_total_loss_before_tuning": base["loss"]})
        hyper = job["supervisedTuningSpec"]["hyperParameters"]
        params = {"base_model": job["baseModel"], "epoch_count": int(hyper["epochCount"]),
                  "adapter_size": _adapter_rank(hyper["adapterSize"]),
                  "learning_rate_multiplier": hyper["learningRateMultiplier"]}
        experiment = self.metadata.create("contexts", store, {
            "displayName": experiment_id, "schemaTitle": "system.Experiment",
            "metadata": {"experiment_deleted": False}}, experiment_id)
        run = self.metadata.create("contexts", store, {
            "displayName": "tuning", "schemaTitle": "system.ExperimentRun",
            "metadata": {"_params": params, "_metrics": metrics, "_state": "COMPLETE"}},
            f"{experiment_id}-tuning")
        self.metadata.add_children(experiment["name"], [run["name"]])
        return experiment["name"]

    # ---- tuned models, for serving

    def adapters_for(self, parent: str, *, endpoint_id: str | None = None,
                     model_id: str | None = None) -> tuple[str, Path]:
        """(job name, adapter folder) of the tuned model an endpoint serves or a model
        resource names; Vertex's 404 when the endpoint or model is gone."""
        if endpoint_id is not None:
            endpoint = self.store.get("endpoints", endpoint_id) if endpoint_id.isdigit() \
                else None
            if endpoint is None or not endpoint["name"].startswith(parent + "/"):
                raise errors.not_found("Endpoint", f"{parent}/endpoints/{endpoint_id}")
            live = [d for d in endpoint["deployedModels"]
                    if endpoint["trafficSplit"].get(d["id"], 0) > 0]
            if not live:
                raise errors.failed_precondition(
                    f"Endpoint {endpoint['name']} has no DeployedModel receiving traffic; "
                    f"deploy a model to it first.")
            model_id = live[0]["model"].rsplit("/", 1)[-1]
        model_id = (model_id or "").partition("@")[0]
        for job in self.store.all("tuningJobs"):
            tuned = (job.get("tunedModel") or {}).get("model", "")
            if tuned.partition("@")[0] == f"{parent}/models/{model_id}":
                if self.store.get("models", model_id) is None:
                    break
                return job, self.folder(job["name"].rsplit("/", 1)[-1])
        raise errors.not_found("Model", f"{parent}/models/{model_id} (a tuned model)")


def read_progress(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "progress.json").read_text())
    except (OSError, ValueError):
        return None


def summary(progress: dict) -> dict:
    """What the trainer measured, in the job resource (raw REST; the SDKs keep only the
    fields they know): losses per step and on the validation set, steps per second."""
    return {"trainLoss": [{"step": p["step"], "loss": p["loss"]} for p in progress["train"]],
            "validationLoss": progress.get("eval", []),
            "stepsPerSecond": progress.get("stepsPerSecond"),
            "epochSeconds": progress.get("epochSeconds", []),
            "loadSeconds": progress.get("loadSeconds")}


def _plain(example: datasets.Example) -> dict:
    return {"system": example.system, "turns": [list(t) for t in example.turns]}


def _adapter_name(rank: int) -> str:
    return next(name for name, value in ADAPTER_ENUM.items() if value == rank)


def _adapter_rank(name: str) -> int:
    return ADAPTER_ENUM[name]


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)
