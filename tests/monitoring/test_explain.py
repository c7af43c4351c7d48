"""Attribution engine: shapes, additivity within the reported error, known answers."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.services.http import HttpError
from labkit.vertex.monitoring import explain, hooks

WEIGHTS = np.array([2.0, -1.0, 0.5])


def linear(rows):
    return [float(np.dot(WEIGHTS, r) + 1.0) for r in rows]


def interacting(rows):
    return [float(r[0] * r[1] + np.sin(r[2])) for r in rows]


def shapley_spec(paths=10, names=("a", "b", "c"), baseline=(0.0, 0.0, 0.0)):
    return {"parameters": {"sampledShapleyAttribution": {"pathCount": paths}},
            "metadata": {"inputs": {"x": {"encoding": "BAG_OF_FEATURES",
                                          "indexFeatureMapping": list(names),
                                          "inputBaselines": [list(baseline)]}},
                         "outputs": {"score": {}}}}


def test_sampled_shapley_on_a_linear_model_is_exact():
    x = [1.0, 3.0, -2.0]
    [result] = explain.attribute(shapley_spec(), [x], linear([x]), linear, seed=0)
    attribution = result["attributions"][0]
    assert set(attribution) >= {"baselineOutputValue", "instanceOutputValue",
                                "featureAttributions", "approximationError", "outputName"}
    expected = WEIGHTS * np.array(x)  # w_j (x_j - b_j)
    got = [attribution["featureAttributions"][n] for n in "abc"]
    assert got == pytest.approx(list(expected))
    assert attribution["approximationError"] == pytest.approx(0.0, abs=1e-9)


def test_identity_encoding_gives_one_array_attribution_per_input():
    """Without an encoding (IDENTITY, Vertex's default) the list is one feature: its
    attribution is an array under the input's name (Attribution.featureAttributions);
    enum-encoding=int sends BAG_OF_FEATURES as 2."""
    x = [1.0, 3.0, -2.0]
    identity = shapley_spec()
    del identity["metadata"]["inputs"]["x"]["encoding"]
    [result] = explain.attribute(identity, [x], linear([x]), linear, seed=0)
    grouped = result["attributions"][0]["featureAttributions"]
    assert list(grouped) == ["x"]
    assert grouped["x"] == pytest.approx(list(WEIGHTS * np.array(x)))
    numbered = shapley_spec()
    numbered["metadata"]["inputs"]["x"]["encoding"] = 2
    [result] = explain.attribute(numbered, [x], linear([x]), linear, seed=0)
    assert set(result["attributions"][0]["featureAttributions"]) == {"a", "b", "c"}


def test_sampled_shapley_sums_to_prediction_minus_baseline_within_error():
    rng = np.random.default_rng(4)
    instances = [list(rng.normal(size=3)) for _ in range(5)]
    results = explain.attribute(shapley_spec(paths=7), instances, interacting(instances),
                                interacting, seed=1)
    for instance, result in zip(instances, results, strict=True):
        a = result["attributions"][0]
        delta = a["instanceOutputValue"] - a["baselineOutputValue"]
        assert a["instanceOutputValue"] == pytest.approx(interacting([instance])[0])
        total = sum(a["featureAttributions"].values())
        assert abs(total - delta) <= a["approximationError"] * abs(delta) + 1e-9
        # x0*x1 is shared between a and b: their attributions are not the single-feature
        # effects, so the sampled paths disagree and the error is reported as non-zero.
        assert a["approximationError"] > 0


def test_dict_instances_with_strings_and_class_scores():
    def model(rows):
        return [[0.2, 0.8] if r["colour"] == "red" and r["size"] > 2 else [0.9, 0.1]
                for r in rows]

    spec = {"parameters": {"sampledShapleyAttribution": {"pathCount": 5}},
            "metadata": {"inputs": {"colour": {"inputBaselines": ["blue"]},
                                    "size": {"inputBaselines": [0]}},
                         "outputs": {"probabilities": {"indexDisplayNameMapping": ["no", "yes"]}}}}
    instance = {"colour": "red", "size": 3}
    [result] = explain.attribute(spec, [instance], model([instance]), model, seed=2)
    a = result["attributions"][0]
    assert a["outputIndex"] == [1] and a["outputDisplayName"] == "yes"
    assert a["instanceOutputValue"] == 0.8 and a["baselineOutputValue"] == 0.1
    # Each feature alone does nothing; together they move 0.1 -> 0.8. On a path the feature
    # switched second gets all 0.7, so each attribution is a multiple of 0.7 / 5 paths and
    # the exact Shapley value (0.35 each) lies within the reported standard error.
    colour, size = a["featureAttributions"]["colour"], a["featureAttributions"]["size"]
    assert colour + size == pytest.approx(0.7)
    assert round(colour / 0.14, 9) == round(colour / 0.14)
    assert abs(colour - 0.35) <= 3 * a["approximationError"] * 0.7


def test_integrated_gradients_by_finite_differences():
    spec = {"parameters": {"integratedGradientsAttribution": {"stepCount": 50}},
            "metadata": {"inputs": {"x": {"encoding": "BAG_OF_FEATURES",
                                          "indexFeatureMapping": ["a", "b", "c"]}}}}
    x = [0.5, 1.5, -1.0]
    [result] = explain.attribute(spec, [x], interacting([x]), interacting)
    a = result["attributions"][0]
    delta = a["instanceOutputValue"] - a["baselineOutputValue"]
    assert sum(a["featureAttributions"].values()) == pytest.approx(delta, rel=1e-3)
    # Along the straight path x0*x1 splits evenly between a and b; sin is all c's.
    assert a["featureAttributions"]["a"] == pytest.approx(x[0] * x[1] / 2, rel=1e-3)
    assert a["featureAttributions"]["c"] == pytest.approx(np.sin(x[2]), rel=1e-3)
    assert a["approximationError"] < 0.01


def test_integrated_gradients_with_gradient_tape_on_a_savedmodel(tmp_path):
    import tensorflow as tf

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def serve(self, x):
            return {"score": tf.sigmoid(x[:, :1] * 3.0 - x[:, 1:] ** 2)}

    module = Model()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    model = {"name": "projects/p/locations/l/models/1", "versionId": "1",
             "artifactUri": str(tmp_path),
             "containerSpec": {"imageUri": "us-docker.pkg.dev/vertex-ai/prediction/"
                                           "tf2-cpu.2-15:latest"}}
    spec = {"parameters": {"integratedGradientsAttribution": {"stepCount": 50}},
            "metadata": {"inputs": {"x": {"encoding": "BAG_OF_FEATURES",
                                          "indexFeatureMapping": ["up", "down"]}},
                         "outputs": {"score": {"outputTensorName": "score"}}}}
    from labkit.vertex import serving
    from labkit.vertex.serving.process import ModelServer

    # its model server process computes the gradients (the services never load the model)
    server = ModelServer("tensorflow", tmp_path, tmp_path / "saved_model.pb", str(tmp_path))
    try:
        predict = serving.PredictFn(server)
        assert predict.gradients is not None
        x = [0.8, 1.2]
        [result] = explain.attribute(spec, [x], predict([x]), predict, model=model)
    finally:
        server.close()
    a = result["attributions"][0]
    delta = a["instanceOutputValue"] - a["baselineOutputValue"]
    assert a["baselineOutputValue"] == pytest.approx(0.5, abs=1e-6)  # sigmoid(0)
    assert sum(a["featureAttributions"].values()) == pytest.approx(delta, abs=2e-3)
    assert a["featureAttributions"]["up"] > 0 > a["featureAttributions"]["down"]
    assert a["approximationError"] < 0.01


def test_explain_hook_shape_and_missing_spec():
    endpoint = {"name": "projects/p/locations/l/endpoints/7", "deployedModels": [{"id": "9"}]}
    x = [1.0, 2.0, 3.0]
    body = hooks.explain(None, endpoint, "9", {"explanationSpec": shapley_spec()}, [x], None,
                         linear)
    assert body["deployedModelId"] == "9" and body["predictions"] == linear([x])
    assert len(body["explanations"]) == 1
    with pytest.raises(HttpError) as caught:
        hooks.explain(None, endpoint, "9", {}, [x], None, linear)
    assert caught.value.status == 400
    assert "explanation_spec" in caught.value.body["error"]["message"]


def test_batch_explanations_take_the_jobs_override():
    x = [[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]]
    model = {"explanationSpec": {"metadata": shapley_spec()["metadata"]}}
    found = hooks.batch_explanations(model, x, linear(x), linear,
                                     {"parameters": {"sampledShapleyAttribution":
                                                     {"pathCount": 3}}})
    assert [e["attributions"][0]["featureAttributions"]["a"] for e in found] == pytest.approx(
        [2.0, 0.0])
    with pytest.raises(HttpError):
        hooks.batch_explanations(model, x, linear(x), linear)
