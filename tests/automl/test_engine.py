"""labkit.automl without HTTP: budget mapping, objectives, column transformations, data
rules, splits and a search; its errors are its own, not Vertex's or BigQuery's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit.automl import InvalidInput, engine, objectives, splits
from labkit.automl.features import Featurizer, infer_type


def test_budget_mapping():
    assert engine.budget_seconds(1000) == engine.SECONDS_PER_NODE_HOUR
    assert engine.budget_seconds(72000) == engine.MAX_BUDGET_S


def test_objective_rules():
    assert objectives.resolve(None, "classification", 2).name == "maximize-au-roc"
    assert objectives.resolve(None, "classification", 3).name == "minimize-log-loss"
    assert objectives.resolve(None, "regression", 0).metric == "rmse"
    with pytest.raises(InvalidInput, match="only supported for binary"):
        objectives.resolve("maximize-au-prc", "classification", 3)
    with pytest.raises(InvalidInput, match="RecallValue"):
        objectives.resolve("maximize-precision-at-recall", "classification", 2)
    with pytest.raises(InvalidInput, match="negative"):
        objectives.resolve("minimize-rmsle", "regression", 0, y=np.array([1.0, -2.0]))


def test_precision_at_recall_picks_a_threshold():
    y = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    precision, threshold = objectives.precision_at_recall(y, scores, 1.0)
    assert threshold == 0.35 and precision == pytest.approx(0.75)
    recall, threshold = objectives.recall_at_precision(y, scores, 1.0)
    assert recall == pytest.approx(2 / 3) and threshold == 0.8


def test_transformations():
    frame = pd.DataFrame({
        "n": ["1", "2.5", "x"], "c": ["a", "b", "a"],
        "t": ["2024-01-02T03:04:05Z", "2024-02-03T00:00:00Z", "2025-03-04T10:00:00Z"],
        "words": ["the quick brown fox jumps", "a lazy dog sleeps all day", "foxes and dogs x"]})
    assert [infer_type(frame[c]) for c in frame] == ["categorical", "categorical",
                                                     "timestamp", "text"]
    featurizer = Featurizer({"n": "numeric", "c": "categorical", "t": "auto",
                             "words": "text"}).fit(frame)
    out = featurizer.transform(pd.DataFrame({"n": ["7"], "c": ["zzz"], "t": [None],
                                             "words": ["quick fox"]}))
    assert out["n"].tolist() == [7.0]
    assert out["c"].isna().all()  # unseen category -> missing
    assert "t__year" in out and "words__fox" in out and out["words__fox"].iloc[0] > 0


def test_data_rules():
    frame = pd.DataFrame({"x": range(10), "y": [0, 1] * 5})
    with pytest.raises(InvalidInput, match="10 rows"):
        engine.check_data(frame, "y", "classification", {"x": "auto"})
    with pytest.raises(InvalidInput, match="not in the dataset"):
        engine.check_data(frame, "label", "classification", {"x": "auto"})
    big = pd.DataFrame({"x": range(1000), "y": [1] * 1000})
    with pytest.raises(InvalidInput, match="1 distinct values"):
        engine.check_data(big, "y", "classification", {"x": "auto"})
    with pytest.raises(InvalidInput, match="Unknown transformation"):
        engine.check_data(big, "y", "regression", {"x": "fancy"})


def test_search_with_timestamp_split_weights_text_and_rmsle():
    rng = np.random.default_rng(0)
    n = 1200
    size = rng.uniform(20, 200, n)
    rooms = rng.integers(1, 6, n)
    words = np.where(size > 100, "large bright flat with a garden view", "small flat near the road")
    frame = pd.DataFrame({
        "size_m2": size, "rooms": rooms.astype(str), "listing": words,
        "listed": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC").astype(str),
        "weight": rng.uniform(0.5, 2.0, n),
        "price": size * 30 + rooms * 100 + rng.normal(0, 50, n)})
    roles = splits.timestamp_roles(frame["listed"], (0.8, 0.1, 0.1))
    assert (roles[-100:] == "TEST").all()  # the newest rows are the test split
    result = engine.search(
        frame, "price", "regression", "minimize-rmsle", time_budget_s=6,  # 2 s: 1 trial if loaded
        transformations={"size_m2": "numeric", "rooms": "categorical", "listing": "text",
                         "listed": "timestamp"},
        roles=roles, weight_column="weight", estimators=["lgbm"])
    assert result.objective.metric_name == "rootMeanSquaredLogError"
    assert 0 < result.validation_score < 0.5
    predicted = result.model.predict(np.asarray([{"size_m2": "150", "rooms": "3",
                                                  "listing": "large bright flat",
                                                  "listed": "2024-03-01T00:00:00Z"}]))
    assert predicted[0]["lower_bound"] < predicted[0]["value"] < predicted[0]["upper_bound"]
    assert abs(predicted[0]["value"] - 150 * 30 - 300) < 1500


def test_splits():
    roles = splits.random_roles(10, (0.6, 0.2, 0.2), seed=0)
    assert sorted(roles.tolist()) == ["TEST"] * 2 + ["TRAIN"] * 6 + ["VALIDATE"] * 2
    roles = splits.predefined_roles(pd.Series(["training", "validation", "test", "TRAIN"]))
    assert roles[:3].tolist() == ["TRAIN", "VALIDATE", "TEST"] and pd.isna(roles[3])
    with pytest.raises(InvalidInput, match="RFC 3339"):
        splits.timestamp_roles(pd.Series(["2024-01-01", "soon"]), (0.5, 0.5, 0.0))
