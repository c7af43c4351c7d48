"""AutoML TrainingPipelines: validate, store, search in a background thread, register.

The training pipelines routes hand any AutoML trainingTaskDefinition here. Tabular
classification and regression (automl_tabular) run on the local engine; the pipeline
moves PENDING -> RUNNING -> SUCCEEDED / FAILED / CANCELLED in the store collection
"trainingPipelines", and a cancel (state PIPELINE_STATE_CANCELLING, set by the cancel
route) is honoured between phases. On success the model is uploaded to the registry with
its artifact (model.joblib, served by the prebuilt scikit-learn engine) and its evaluation on the
test split, and modelToUpload names it, as the SDK's run() expects.
"""

from __future__ import annotations

import json
import threading
import traceback

import joblib

from labkit.automl import engine, objectives, splits
from labkit.automl.errors import AutoMLError, NoModelFound
from labkit.automl.features import TYPES
from labkit.vertex import errors
from labkit.vertex.automl import datasets, evaluation
from labkit.vertex.registry import Registry
from labkit.vertex.store import ResourceStore, new_id, now

COLLECTION = "trainingPipelines"
TABULAR = "automl_tabular_1.0.0.yaml"
NOT_LOCAL = {  # task definition fragment -> what it is
    "forecasting": "AutoML forecasting training", "time_series": "AutoML forecasting training",
    "seq2seq": "AutoML forecasting training", "tft": "AutoML forecasting training",
    "image": "AutoML image training", "video": "AutoML video training",
    "text": "AutoML text training",
}
MIN_BUDGET, MAX_BUDGET = 1000, 72000
# Served by the prebuilt scikit-learn engine (labkit.automl.model.AutoMLModel.predict).
IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"
SCHEMATA = "gs://google-cloud-aiplatform/schema/predict/"
TERMINAL = {f"PIPELINE_STATE_{s}" for s in ("SUCCEEDED", "FAILED", "CANCELLED")}
CANCELLING = "PIPELINE_STATE_CANCELLING"


class Cancelled(Exception):
    pass


def vertex_error(exc: AutoMLError) -> errors.VertexError:
    """The search's own errors in Vertex's shape: a search without a model is INTERNAL,
    every other rule the data or the settings break is INVALID_ARGUMENT."""
    if isinstance(exc, NoModelFound):
        return errors.VertexError("INTERNAL", exc.message)
    return errors.invalid(exc.message)


def _transformations(inputs: dict) -> dict[str, str]:
    """[{"numeric": {"columnName": "x"}}, ...] -> {"x": "numeric"}."""
    columns: dict[str, str] = {}
    for item in inputs.get("transformations") or []:
        if not isinstance(item, dict) or len(item) != 1:
            raise errors.invalid(f"Each transformation names one type: {item!r}.")
        kind, spec = next(iter(item.items()))
        if kind not in TYPES:
            raise errors.invalid(f"Transformation type {kind!r} is not supported locally; use "
                                 f"one of {', '.join(TYPES)}.")
        column = (spec or {}).get("columnName") or (spec or {}).get("column_name")
        if not column:
            raise errors.invalid(f"The {kind} transformation needs a column_name.")
        if column in columns:
            raise errors.invalid(f"Column {column!r} has more than one transformation.")
        columns[column] = kind
    return columns


def _fractions(split: dict) -> tuple[float, float, float]:
    values = tuple(float(split.get(k) or 0) for k in
                   ("trainingFraction", "validationFraction", "testFraction"))
    if not any(values):
        return 0.8, 0.1, 0.1  # Vertex's default split
    if any(v < 0 for v in values) or sum(values) > 1.0 + 1e-9:
        raise errors.invalid("Split fractions must be non-negative and sum to at most 1.")
    return values


def validate(store: ResourceStore, parent: str, body: dict) -> dict:
    """Checks what Vertex checks at creation; returns the parsed job."""
    definition = body.get("trainingTaskDefinition") or ""
    if not definition.endswith("/" + TABULAR):
        for fragment, feature in NOT_LOCAL.items():
            if fragment in definition.rsplit("/", 1)[-1]:
                raise errors.gcp_only(feature)
        raise errors.gcp_only(f"AutoML training with {definition!r}")
    if not body.get("displayName"):
        raise errors.invalid("TrainingPipeline.display_name is required.")
    inputs = body.get("trainingTaskInputs") or {}
    target = inputs.get("targetColumn")
    if not target:
        raise errors.invalid("trainingTaskInputs.targetColumn is required.")
    task = inputs.get("predictionType")
    if task not in ("classification", "regression"):
        raise errors.invalid(f"predictionType must be classification or regression, not "
                             f"{task!r}.")
    objective = inputs.get("optimizationObjective") or None
    allowed = objectives.REGRESSION if task == "regression" else objectives.CLASSIFICATION
    if objective and objective not in allowed:
        raise errors.invalid(f"Optimization objective {objective!r} is not valid for "
                             f"prediction type {task}; valid objectives: {', '.join(allowed)}.")
    budget = float(inputs.get("trainBudgetMilliNodeHours") or MIN_BUDGET)
    if not MIN_BUDGET <= budget <= MAX_BUDGET:
        raise errors.invalid(f"train_budget_milli_node_hours must be between {MIN_BUDGET} and "
                             f"{MAX_BUDGET}; got {budget:g}.")
    data = body.get("inputDataConfig") or {}
    dataset_id = str(data.get("datasetId") or "")
    if not dataset_id:
        raise errors.invalid("AutoML tabular training needs a dataset (input_data_config."
                             "dataset_id).")
    dataset = store.get("datasets", dataset_id) if dataset_id.isdigit() else None
    if dataset is None:
        raise errors.not_found("Dataset", f"{parent}/datasets/{dataset_id}")
    if data.get("filterSplit"):
        raise errors.gcp_only("Filter splits (training_filter_split)")
    if data.get("timestampSplit"):
        split = {"kind": "timestamp", "key": data["timestampSplit"].get("key"),
                 "fractions": _fractions(data["timestampSplit"])}
        if not split["key"]:
            raise errors.invalid("timestamp_split needs the timestamp column name (key).")
    elif data.get("predefinedSplit"):
        split = {"kind": "predefined", "key": data["predefinedSplit"].get("key")}
        if not split["key"]:
            raise errors.invalid("predefined_split needs the split column name (key).")
    else:
        split = {"kind": "fraction", "fractions": _fractions(data.get("fractionSplit") or {})}
    return {"target": target, "task": task, "objective": objective, "budget": budget,
            "transformations": _transformations(inputs), "split": split, "dataset": dataset,
            "weight": inputs.get("weightColumnName") or None,
            "early_stop": not inputs.get("disableEarlyStopping"),
            "recall": inputs.get("optimizationObjectiveRecallValue"),
            "precision": inputs.get("optimizationObjectivePrecisionValue")}


def start_training_pipeline(store: ResourceStore, registry: Registry, parent: str,
                            body: dict, bigquery) -> dict:
    job = validate(store, parent, body)
    pipeline_id = new_id()
    stamp = now()
    pipeline = {**body, "name": f"{parent}/{COLLECTION}/{pipeline_id}",
                "state": "PIPELINE_STATE_PENDING", "createTime": stamp, "updateTime": stamp}
    store.put(COLLECTION, pipeline_id, pipeline)
    threading.Thread(target=_run, args=(store, registry, parent, pipeline_id, job, bigquery),
                     daemon=True, name=f"automl-{pipeline_id}").start()
    return pipeline


def _update(store: ResourceStore, pipeline_id: str, **fields) -> dict:
    """Writes fields unless a cancel arrived; raises Cancelled if it did."""
    with store.lock:
        pipeline = store.get(COLLECTION, pipeline_id)
        if pipeline["state"] == CANCELLING and fields.get("state") not in TERMINAL:
            raise Cancelled()
        pipeline.update(fields, updateTime=now())
        return store.put(COLLECTION, pipeline_id, pipeline)


def _roles(frame, job: dict):
    split = job["split"]
    if split["kind"] == "fraction":
        return splits.random_roles(len(frame), split["fractions"], seed=0)
    if split["key"] not in frame.columns:
        raise errors.invalid(f"Split column {split['key']!r} is not in the dataset.")
    if split["kind"] == "predefined":
        roles = splits.predefined_roles(frame[split["key"]])
        empty = [value for value, role in splits.PREDEFINED_VALUES.items()
                 if role != "TEST" and not (roles == role).any()]
        if empty:
            found = ", ".join(repr(v) for v in frame[split["key"]].dropna().unique()[:5])
            raise errors.invalid(
                f"No row of the predefined split column {split['key']!r} holds "
                f"{' or '.join(repr(v) for v in empty)}. Vertex AI reads exactly 'training', "
                f"'validation' and 'test' there and ignores rows with other values "
                f"(this column holds {found}).")
        return roles
    return splits.timestamp_roles(frame[split["key"]], split["fractions"])


def _run(store: ResourceStore, registry: Registry, parent: str, pipeline_id: str,
         job: dict, bigquery) -> None:
    try:
        _update(store, pipeline_id, state="PIPELINE_STATE_RUNNING", startTime=now())
        frame = datasets.read_frame(job["dataset"], store.workspace, bigquery)
        roles = _roles(frame, job)
        split_key = job["split"].get("key")
        not_features = (job["target"], job["weight"], split_key)  # never model inputs
        transformations = {c: kind for c, kind in job["transformations"].items()
                           if c not in not_features} or \
            {c: "auto" for c in frame.columns if c not in not_features}
        budget_s = engine.budget_seconds(job["budget"])
        result = engine.search(
            frame, job["target"], job["task"], job["objective"], budget_s,
            transformations=transformations, roles=roles, weight_column=job["weight"],
            early_stop=job["early_stop"], recall=job["recall"], precision=job["precision"])
        _update(store, pipeline_id)  # a cancel during the search stops here
        folder = store.root / "automl" / pipeline_id / "model"
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(result.model, folder / "model.joblib")
        pipeline = store.get(COLLECTION, pipeline_id)
        model = _upload(registry, parent, pipeline, folder, job["task"])
        version_ref = f"{model['name'].rsplit('/', 1)[-1]}@{model['versionId']}"
        registry.add_evaluation(parent, version_ref, evaluation.evaluation(
            result.model, result.test, job["target"], len(result.test)))
        _update(store, pipeline_id, state="PIPELINE_STATE_SUCCEEDED", endTime=now(),
                modelToUpload=model, modelId=model["name"].rsplit("/", 1)[-1],
                trainingTaskMetadata=_metadata(result, job))
    except Cancelled:
        _update(store, pipeline_id, state="PIPELINE_STATE_CANCELLED", endTime=now(),
                error={"code": 1, "message": "The training pipeline was cancelled."})
    except errors.VertexError as exc:
        _update(store, pipeline_id, state="PIPELINE_STATE_FAILED", endTime=now(),
                error=exc.as_operation_error())
    except AutoMLError as exc:
        _update(store, pipeline_id, state="PIPELINE_STATE_FAILED", endTime=now(),
                error=vertex_error(exc).as_operation_error())
    except Exception as exc:  # noqa: BLE001 - a failed search must not stop the services
        traceback.print_exc()
        _update(store, pipeline_id, state="PIPELINE_STATE_FAILED", endTime=now(),
                error={"code": 13, "message": f"{type(exc).__name__}: {exc}"})


def _upload(registry: Registry, parent: str, pipeline: dict, folder, task: str) -> dict:
    wanted = pipeline.get("modelToUpload") or {}
    spec = {
        **{k: wanted[k] for k in ("displayName", "description", "labels", "versionAliases",
                                  "versionDescription", "encryptionSpec") if k in wanted},
        "displayName": wanted.get("displayName") or pipeline["displayName"],
        "artifactUri": str(folder),
        "containerSpec": {"imageUri": IMAGE},
        "predictSchemata": {
            "instanceSchemaUri": f"{SCHEMATA}instance/tabular_{task}_1.0.0.yaml",
            "predictionSchemaUri": f"{SCHEMATA}prediction/tabular_{task}_1.0.0.yaml"},
    }
    upload = {"model": spec}
    for key in ("parentModel", "modelId"):
        if pipeline.get(key):
            upload[key] = pipeline[key]
    answer = registry.upload(parent, upload)["response"]
    return {**spec, "name": answer["model"], "versionId": answer["modelVersionId"]}


def _metadata(result: engine.SearchResult, job: dict) -> dict:
    """trainingTaskMetadata: Vertex's cost field plus what the local search did."""
    plain = {"default": lambda o: o.item() if hasattr(o, "item") else str(o)}
    return json.loads(json.dumps({
        "trainCostMilliNodeHours": str(int(round(
            result.seconds / engine.SECONDS_PER_NODE_HOUR * 1000))),
        "localSearch": {
            "optimizationObjective": result.objective.name,
            "searchMetric": result.objective.metric_name,
            "validationScore": result.validation_score,
            "decisionThreshold": result.threshold,
            "bestModelFamily": result.best_estimator,
            "bestHyperparameters": result.best_config,
            "bestScorePerFamily": result.best_per_estimator,
            "trials": result.trials,
            "improvements": result.improvements,
            "timeBudgetSeconds": result.time_budget_s,
            "searchSeconds": round(result.seconds, 2),
            "earlyStopping": job["early_stop"],
        },
    }, **plain))


def recover(store: ResourceStore) -> None:
    """AutoML pipelines of a services process that stopped cannot resume: they failed."""
    for pipeline in store.all(COLLECTION):
        if "/automl_" in pipeline.get("trainingTaskDefinition", "") and \
                pipeline.get("state") not in TERMINAL:
            pipeline.update(state="PIPELINE_STATE_FAILED", endTime=now(), updateTime=now(),
                            error={"code": 10, "message": "The local services stopped while "
                                                          "the pipeline ran; run it again."})
            store.put(COLLECTION, pipeline["name"].rsplit("/", 1)[-1], pipeline)
