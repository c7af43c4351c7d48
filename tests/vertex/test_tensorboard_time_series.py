"""Vertex AI TensorBoard time series under experiment runs, through the real SDK:
log_time_series_metrics, get_time_series_data_frame, the TensorboardTimeSeries reads and
export, and deleting an experiment with its backing TensorBoard runs."""

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform


def test_time_series_log_read_export_and_delete(local_env):
    name = f"ts-{uuid.uuid4().hex[:8]}"
    aiplatform.init(experiment=name)
    try:
        aiplatform.start_run("run-1")
        for step in range(1, 6):
            aiplatform.log_time_series_metrics({"loss": 1.0 / step, "accuracy": step / 10},
                                               step=step)
        aiplatform.log_metrics({"final": 0.5})
        run = aiplatform.ExperimentRun("run-1", experiment=name)
        frame = run.get_time_series_data_frame()
        assert list(frame["step"]) == [1, 2, 3, 4, 5]
        assert list(frame["loss"]) == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2])
        assert list(frame["accuracy"]) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
        # a step without a step number continues after the last one
        aiplatform.log_time_series_metrics({"loss": 0.1})
        aiplatform.end_run()

        df = aiplatform.get_experiment_df(name)
        assert df["time_series_metric.loss"].tolist() == pytest.approx([0.1])
        assert df["metric.final"].tolist() == [0.5]

        tb_run = run._backing_tensorboard_run.resource
        series = aiplatform.TensorboardTimeSeries.list(tensorboard_run_name=tb_run.resource_name)
        assert sorted(s.display_name for s in series) == ["accuracy", "loss"]
        loss = next(s for s in series if s.display_name == "loss")
        client = loss.api_client
        read = client.read_tensorboard_time_series_data(
            tensorboard_time_series=loss.resource_name)
        assert [int(v.step) for v in read.time_series_data.values] == [1, 2, 3, 4, 5, 6]
        exported = list(client.export_tensorboard_time_series_data(
            tensorboard_time_series=loss.resource_name))
        assert [p.scalar.value for p in exported][-1] == pytest.approx(0.1)

        experiment = aiplatform.Experiment(name)
        experiment.delete(delete_backing_tensorboard_runs=True)
        with pytest.raises(exceptions.NotFound):
            aiplatform.TensorboardRun(tb_run.resource_name)
        with pytest.raises(exceptions.NotFound):
            aiplatform.TensorboardTimeSeries(loss.resource_name)
    finally:
        aiplatform.init(experiment=None)
