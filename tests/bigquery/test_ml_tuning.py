"""BigQuery ML hyperparameter tuning through the real client: NUM_TRIALS real trainings with
HPARAM_RANGE / HPARAM_CANDIDATES values, ML.TRIAL_INFO's documented columns, ML.EVALUATE and
ML.PREDICT on the optimal trial or a trial_id, the REST resource's trials, and the checks
BigQuery makes; the older LABELS option name for the label columns."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

PENGUINS = "`bigquery-public-data.ml_datasets.penguins`"


def test_linear_regression_trials(client, dataset):
    client.query(f"""
        CREATE MODEL {dataset}.mass OPTIONS(model_type='linear_reg',
          input_label_cols=['body_mass_g'], num_trials=5, max_parallel_trials=2,
          hparam_tuning_algorithm='RANDOM_SEARCH',
          l1_reg=HPARAM_RANGE(0, 5), l2_reg=HPARAM_CANDIDATES([0, 0.5, 50]),
          hparam_tuning_objectives=['MEAN_ABSOLUTE_ERROR'])
        AS SELECT * FROM {PENGUINS} WHERE body_mass_g IS NOT NULL""").result()
    trials = list(client.query(
        f"SELECT * FROM ML.TRIAL_INFO(MODEL {dataset}.mass) ORDER BY trial_id").result())
    assert [t["trial_id"] for t in trials] == [1, 2, 3, 4, 5]
    assert set(trials[0].keys()) == {"trial_id", "hyperparameters",
                                     "hparam_tuning_evaluation_metrics", "training_loss",
                                     "eval_loss", "status", "error_message", "is_optimal"}
    for t in trials:
        assert 0 <= t["hyperparameters"]["l1_reg"] <= 5
        assert t["hyperparameters"]["l2_reg"] in (0, 0.5, 50)
        assert t["status"] == "SUCCEEDED"
    maes = [t["hparam_tuning_evaluation_metrics"]["mean_absolute_error"] for t in trials]
    assert len(set(maes)) > 1          # each trial is a training of its own
    best = min(trials, key=lambda t: t["hparam_tuning_evaluation_metrics"][
        "mean_absolute_error"])
    assert [t["is_optimal"] for t in trials] == [t is best for t in trials]
    row = next(iter(client.query(f"SELECT * FROM ML.EVALUATE(MODEL {dataset}.mass)")))
    assert row["trial_id"] == best["trial_id"]
    assert row["mean_absolute_error"] == pytest.approx(
        best["hparam_tuning_evaluation_metrics"]["mean_absolute_error"])
    other = next(t for t in trials if t is not best)
    row = next(iter(client.query(f"SELECT * FROM ML.EVALUATE(MODEL {dataset}.mass, "
                                 f"STRUCT({other['trial_id']} AS trial_id))")))
    assert row["trial_id"] == other["trial_id"]
    assert row["mean_absolute_error"] == pytest.approx(
        other["hparam_tuning_evaluation_metrics"]["mean_absolute_error"])
    sql = (f"SELECT predicted_body_mass_g AS p FROM ML.PREDICT(MODEL {dataset}.mass, "
           f"(SELECT * FROM {PENGUINS} WHERE body_mass_g IS NOT NULL LIMIT 3){{}})")
    optimal = [r["p"] for r in client.query(sql.format(""))]
    chosen = [r["p"] for r in client.query(sql.format(
        f", STRUCT({best['trial_id']} AS trial_id)"))]
    changed = [r["p"] for r in client.query(sql.format(
        f", STRUCT({other['trial_id']} AS trial_id)"))]
    assert optimal == chosen and optimal != changed
    model = client.get_model(f"{dataset}.mass")._properties
    assert model["defaultTrialId"] == str(best["trial_id"])
    assert len(model["hparamTrials"]) == 5
    assert model["trainingRuns"][0]["trainingOptions"]["numTrials"] == "5"


def test_dnn_with_labels_option_and_default_search(client, dataset):
    # as Google's official sample writes it (get_started_with_bqml_training.ipynb)
    client.query(f"""
        CREATE MODEL {dataset}.species OPTIONS(model_type='DNN_CLASSIFIER',
          labels=['species'], num_trials=3, max_parallel_trials=1,
          HPARAM_TUNING_ALGORITHM='VIZIER_DEFAULT')
        AS SELECT * FROM {PENGUINS}""").result()
    trials = list(client.query(f"SELECT * FROM ML.TRIAL_INFO(MODEL {dataset}.species)"))
    assert len(trials) == 3
    assert set(trials[0]["hyperparameters"]) == {"learn_rate", "dropout", "batch_size"}
    assert set(trials[0]["hparam_tuning_evaluation_metrics"]) == {"roc_auc"}
    row = next(iter(client.query(f"SELECT * FROM ML.EVALUATE(MODEL {dataset}.species)")))
    best = max(t["hparam_tuning_evaluation_metrics"]["roc_auc"] for t in trials)
    assert row["roc_auc"] == pytest.approx(best)


def test_tuning_options_are_checked(client, dataset):
    base = (f"CREATE MODEL {dataset}.bad OPTIONS(model_type='logistic_reg', "
            f"input_label_cols=['sex'], {{}}) AS SELECT sex, body_mass_g FROM {PENGUINS} "
            "WHERE sex IS NOT NULL")
    for options, words in [
            ("l1_reg=HPARAM_RANGE(0, 1)", "NUM_TRIALS"),
            ("num_trials=0", "between 1 and 100"),
            ("num_trials=101", "between 1 and 100"),
            ("num_trials=2, max_parallel_trials=3", "larger than NUM_TRIALS"),
            ("num_trials=2, hparam_tuning_algorithm='BAYES'", "HPARAM_TUNING_ALGORITHM"),
            ("num_trials=2, hparam_tuning_objectives=['r2_score']", "HPARAM_TUNING_OBJECTIVES"),
            ("num_trials=2, max_iterations=HPARAM_RANGE(1, 5)", "MAX_ITERATIONS"),
            ("num_trials=2, l1_reg=HPARAM_RANGE(5, 1)", "greater than"),
            ("num_trials=2, l1_reg=HPARAM_RANGE(0.1, 1), hparam_tuning_algorithm="
             "'GRID_SEARCH'", "GRID_SEARCH")]:
        with pytest.raises(exceptions.BadRequest, match=words):
            client.query(base.format(options)).result()
    with pytest.raises(exceptions.BadRequest, match="labels"):
        client.query(base.replace("input_label_cols=['sex']", "labels=['sex']").format(
            "input_label_cols=['sex']")).result()
    client.query(f"CREATE MODEL {dataset}.plain OPTIONS(model_type='linear_reg', "
                 f"input_label_cols=['body_mass_g']) AS SELECT body_mass_g, flipper_length_mm "
                 f"FROM {PENGUINS} WHERE body_mass_g IS NOT NULL").result()
    with pytest.raises(exceptions.BadRequest, match="hyperparameter tuning"):
        client.query(f"SELECT * FROM ML.EVALUATE(MODEL {dataset}.plain, "
                     "STRUCT(1 AS trial_id))").result()
