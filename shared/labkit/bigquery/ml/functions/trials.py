"""ML.TRIAL_INFO: one row per hyperparameter tuning trial, with the documented columns
trial_id, hyperparameters (STRUCT of the tuned options), hparam_tuning_evaluation_metrics
(STRUCT of the objective on the evaluation rows), training_loss, eval_loss, status,
error_message and is_optimal (docs: https://cloud.google.com/bigquery/docs/reference/
standard-sql/bigqueryml-syntax-trial-info)."""

from __future__ import annotations

import pyarrow as pa

from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.model import TrainedModel
from labkit.bigquery.ml.statements import MLCall


def _hparam_type(values: list) -> pa.DataType:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return pa.bool_()
    if isinstance(sample, int):
        return pa.int64()
    if isinstance(sample, float):
        return pa.float64()
    if isinstance(sample, list):
        return pa.list_(pa.int64())
    return pa.string()


def trial_info(model: TrainedModel, call: MLCall, run_query) -> pa.Table:
    if not model.trials:
        raise MLError(f"ML.TRIAL_INFO needs a model trained with hyperparameter tuning "
                      f"(NUM_TRIALS); {call.ref} was not")
    if call.table or call.query:
        raise MLError("ML.TRIAL_INFO takes only the model")
    trials = model.trials
    names = model.tuning["params"]
    objective = model.tuning["objective"]
    hparams = pa.StructArray.from_arrays(
        [pa.array(col, _hparam_type(col)) for col in
         ([t["hparams"][n] for t in trials] for n in names)], names=names)
    evaluation = pa.StructArray.from_arrays(
        [pa.array([(t.get("eval_metrics") or {}).get(objective) for t in trials],
                  pa.float64())], names=[objective])

    def last(t, key):
        history = t["model"].history if t["model"] is not None else []
        return history[-1].get(key) if history else None

    return pa.table({
        "trial_id": pa.array([t["trial_id"] for t in trials], pa.int64()),
        "hyperparameters": hparams,
        "hparam_tuning_evaluation_metrics": evaluation,
        "training_loss": pa.array([last(t, "loss") for t in trials], pa.float64()),
        "eval_loss": pa.array([last(t, "eval_loss") for t in trials], pa.float64()),
        "status": pa.array([t["status"] for t in trials], pa.string()),
        "error_message": pa.array([t["error"] for t in trials], pa.string()),
        "is_optimal": pa.array([bool(t.get("is_optimal")) for t in trials], pa.bool_()),
    })
