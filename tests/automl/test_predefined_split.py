"""A predefined split column through the Vertex SDK: Vertex reads exactly `training`,
`validation` and `test` and ignores rows with other values (PredefinedSplit in the Vertex AI
API reference; labkit.automl.splits cites it), so a column of TRAIN / VALIDATE / TEST
trains nothing and the pipeline fails with a message naming the values."""

from __future__ import annotations

import pytest
from google.cloud import aiplatform, bigquery

TARGET = "income_bracket"
SPLIT = ("CASE MOD(functional_weight, 10) WHEN 9 THEN '{test}' WHEN 8 THEN '{validation}' "
         "WHEN 7 THEN 'holdout' ELSE '{training}' END")


def _dataset(census, name: str, **values: str):
    table = f"{census[0].removeprefix('bq://')}_{name}"
    bigquery.Client().query(f"""
        CREATE TABLE `{table}` AS
        SELECT * EXCEPT (functional_weight), {SPLIT.format(**values)} AS data_split
        FROM `{census[0][5:]}`""").result()
    return aiplatform.TabularDataset.create(display_name=name, bq_source=f"bq://{table}")


def _run(dataset):
    job = aiplatform.AutoMLTabularTrainingJob(
        display_name=dataset.display_name, optimization_prediction_type="classification")
    return job, job.run(dataset=dataset, target_column=TARGET, budget_milli_node_hours=1000,
                        predefined_split_column_name="data_split")


def test_documented_values_split_the_rows_and_other_values_are_ignored(census):
    dataset = _dataset(census, "documented", training="training", validation="validation",
                       test="test")
    job, model = _run(dataset)
    try:
        assert job.state.name == "PIPELINE_STATE_SUCCEEDED"
        frame = census[2]
        test_rows = int((frame["functional_weight"] % 10 == 9).sum())
        evaluation = model.get_model_evaluation()
        assert evaluation._gca_resource.metadata["evaluation_row_count"] == test_rows
    finally:
        model.delete()
        dataset.delete()


def test_upper_case_split_values_train_nothing(census):
    dataset = _dataset(census, "upper", training="TRAIN", validation="VALIDATE", test="TEST")
    try:
        with pytest.raises(RuntimeError) as info:
            _run(dataset)
        message = str(info.value).replace("\\", "")  # the SDK escapes the quotes
        assert "holds 'training' or 'validation'" in message and "'TRAIN'" in message
        assert "ignores rows with other values" in message
    finally:
        dataset.delete()
