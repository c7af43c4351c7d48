"""HyperparameterTuningJob through the real SDK: each algorithm, parallel trials, scales,
trials and the best trial read back; failing trials."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform
from google.cloud.aiplatform import hyperparameter_tuning as hpt

SKLEARN_IMAGE = "us-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-6:latest"


def _custom_job(trainers, args=()):
    return aiplatform.CustomJob.from_local_script(
        display_name="quadratic", script_path=str(trainers / "quadratic.py"),
        container_uri=SKLEARN_IMAGE, args=list(args))


def _values(trial) -> dict:
    return {p.parameter_id: p.value for p in trial.parameters}


def _score(trial) -> float:
    return trial.final_measurement.metrics[0].value


def test_grid_search_covers_the_grid_and_finds_the_best(trainers):
    job = aiplatform.HyperparameterTuningJob(
        display_name="grid", custom_job=_custom_job(trainers),
        metric_spec={"score": "maximize"},
        parameter_spec={"x": hpt.DiscreteParameterSpec([0.1, 0.3, 0.6], scale="linear"),
                        "kind": hpt.CategoricalParameterSpec(["a", "b", "c"]),
                        # whole numbers reach the trainer as --steps=2, not 2.0
                        "steps": hpt.DiscreteParameterSpec([2], scale="linear")},
        max_trial_count=20, parallel_trial_count=3, search_algorithm="grid")
    job.run()
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    trials = job.trials
    assert len(trials) == 9  # the grid is exhausted before max_trial_count
    assert {(_values(t)["x"], _values(t)["kind"]) for t in trials} == {
        (x, k) for x in (0.1, 0.3, 0.6) for k in "abc"}
    assert all(t.state.name == "SUCCEEDED" for t in trials)
    for t in trials:  # the trainer really ran with the trial's arguments
        v = _values(t)
        score = -(v["x"] - 0.3) ** 2 + {"a": 0, "b": .5, "c": .2}[v["kind"]]
        # it reported score/2 at step 1 and score at step 2; the SDK asks for the best one
        assert _score(t) == pytest.approx(max(score, score / 2))
        assert int(t.final_measurement.step_count) == (2 if score > 0 else 1)
    best = max(trials, key=_score)
    assert _values(best) == {"x": 0.3, "kind": "b", "steps": 2}


def test_random_search_respects_ranges_and_scales(trainers):
    job = aiplatform.HyperparameterTuningJob(
        display_name="random", custom_job=_custom_job(trainers),
        metric_spec={"score": "minimize"},
        parameter_spec={"x": hpt.DoubleParameterSpec(min=1e-4, max=1.0, scale="log"),
                        "steps": hpt.IntegerParameterSpec(min=1, max=3, scale="linear")},
        max_trial_count=8, parallel_trial_count=4, search_algorithm="random")
    job.run()
    trials = job.trials
    assert len(trials) == 8 and all(t.state.name == "SUCCEEDED" for t in trials)
    xs = [_values(t)["x"] for t in trials]
    assert all(1e-4 <= x <= 1.0 for x in xs) and len(set(xs)) == 8
    # How log scale spreads draws is checked on 1,000 seeded draws in test_study.py; 8 unseeded
    # draws here would make any distribution assertion flaky.
    for t in trials:
        steps = _values(t)["steps"]
        assert steps == int(steps) and 1 <= steps <= 3
        assert int(t.final_measurement.step_count) == steps  # LAST_MEASUREMENT by default


def test_default_algorithm_is_bayesian_and_improves(trainers):
    job = aiplatform.HyperparameterTuningJob(
        display_name="bayes", custom_job=_custom_job(trainers, ["--kind", "a"]),
        metric_spec={"score": "maximize"},
        parameter_spec={"x": hpt.DoubleParameterSpec(min=-2.0, max=2.0, scale="linear")},
        max_trial_count=8, parallel_trial_count=1)
    job.run()
    trials = sorted(job.trials, key=lambda t: int(t.id))
    assert [t.id for t in trials] == [str(i) for i in range(1, 9)]
    best = max(trials, key=_score)
    assert abs(_values(best)["x"] - 0.3) < 0.15
    # after the random start the Gaussian process proposes points near the optimum
    assert min(abs(_values(t)["x"] - 0.3) for t in trials[3:]) < min(
        abs(_values(t)["x"] - 0.3) for t in trials[:3])


def test_failing_trials_are_infeasible_and_fail_the_job(trainers):
    job = aiplatform.HyperparameterTuningJob(
        display_name="broken", custom_job=_custom_job(trainers, ["--kind", "zzz"]),
        metric_spec={"score": "maximize"},
        parameter_spec={"x": hpt.DoubleParameterSpec(min=0, max=1, scale="linear")},
        max_trial_count=4, parallel_trial_count=1, max_failed_trial_count=2)
    with pytest.raises(RuntimeError, match="KeyError"):
        job.run()
    assert job.state.name == "JOB_STATE_FAILED"
    assert {t.state.name for t in job.trials} == {"INFEASIBLE"}
    assert len(job.trials) == 2


def test_grid_search_refuses_double_parameters(trainers):
    job = aiplatform.HyperparameterTuningJob(
        display_name="bad-grid", custom_job=_custom_job(trainers),
        metric_spec={"score": "maximize"},
        parameter_spec={"x": hpt.DoubleParameterSpec(min=0, max=1, scale="linear")},
        max_trial_count=4, parallel_trial_count=1, search_algorithm="grid")
    with pytest.raises(exceptions.BadRequest, match="Grid search requires"):
        job.run()


def test_log_scale_needs_positive_minimum(trainers):
    job = aiplatform.HyperparameterTuningJob(
        display_name="bad-log", custom_job=_custom_job(trainers),
        metric_spec={"score": "maximize"},
        parameter_spec={"x": hpt.DoubleParameterSpec(min=0, max=1, scale="log")},
        max_trial_count=2, parallel_trial_count=1)
    with pytest.raises(exceptions.BadRequest, match="greater than 0"):
        job.run()


def test_median_stopping_stops_a_trial_worse_than_the_median(trainers):
    job = aiplatform.HyperparameterTuningJob(
        display_name="early-stop",
        custom_job=_custom_job(trainers, ["--x", "0.3", "--steps", "8", "--pause", "0.3"]),
        metric_spec={"score": "maximize"},
        parameter_spec={"kind": hpt.CategoricalParameterSpec(["b", "a"])},
        max_trial_count=2, parallel_trial_count=1, search_algorithm="grid")
    # The SDK has no argument for it; the API field is set on the request it sends.
    job._gca_resource.study_spec.median_automated_stopping_spec.use_elapsed_duration = False
    job.run()
    first, second = sorted(job.trials, key=lambda t: int(t.id))
    assert [first.state.name, second.state.name] == ["SUCCEEDED", "SUCCEEDED"]
    assert len(first.measurements) == 8
    assert 1 <= len(second.measurements) < 8  # stopped once its best fell below the median


def test_cancel_stops_the_running_trials(trainers):
    job = aiplatform.HyperparameterTuningJob(
        display_name="cancel-me",
        custom_job=_custom_job(trainers, ["--steps", "3", "--pause", "20"]),
        metric_spec={"score": "maximize"},
        parameter_spec={"x": hpt.DoubleParameterSpec(min=0, max=1, scale="linear")},
        max_trial_count=4, parallel_trial_count=2)
    job.run(sync=False)
    job.wait_for_resource_creation()
    job.cancel()
    deadline = time.monotonic() + 30
    while job.state.name not in ("JOB_STATE_CANCELLED", "JOB_STATE_FAILED",
                                 "JOB_STATE_SUCCEEDED") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.state.name == "JOB_STATE_CANCELLED"
    assert len(job.trials) <= 2  # no trial starts after the cancel
    assert all(t.state.name == "INFEASIBLE" for t in job.trials)
