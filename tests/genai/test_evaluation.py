"""The Gen AI evaluation service through the Vertex AI SDK (vertexai.evaluation.EvalTask,
which posts one :evaluateInstances per row and metric) and its GAPIC client for bad input.

Computation metrics are checked against rouge-score and sacrebleu called directly; the
model-based ones against what the local judge must return (a rubric rating, the same one
every time, and the SDK's summary and per-row table built from them)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("local_env")


@pytest.fixture(scope="module")
def evaluation(local_env):
    import vertexai

    vertexai.init()  # labkit.start() configured project, location and endpoint
    from vertexai import evaluation

    return evaluation


def call(name, **arguments):
    return json.dumps({"content": "", "tool_calls": [{"name": name, "arguments": arguments}]})


def test_computation_metrics_match_the_reference_libraries(evaluation):
    import pandas as pd
    import sacrebleu
    from rouge_score import rouge_scorer

    df = pd.DataFrame({
        "response": ["The cat sat on the mat.", "Paris is the capital of France",
                     "running dogs are fast"],
        "reference": ["The cat sat on the mat.", "The capital of France is Paris.",
                      "the dog runs quickly"]})
    rouge_l = evaluation.metrics.Rouge(rouge_type="rougeL", use_stemmer=True)
    result = evaluation.EvalTask(dataset=df, metrics=["exact_match", "bleu", "rouge_1",
                                                      "rouge_l_sum", rouge_l]).evaluate()
    table = result.metrics_table
    assert list(table["exact_match/score"]) == [1.0, 0.0, 0.0]
    for i, (p, r) in enumerate(zip(df.response, df.reference, strict=True)):
        assert table["bleu/score"][i] == pytest.approx(
            sacrebleu.sentence_bleu(p, [r]).score / 100, abs=1e-6)
        for column, kind, stem in (("rouge_1/score", "rouge1", False),
                                   ("rouge_l_sum/score", "rougeLsum", False),
                                   ("rouge/score", "rougeL", True)):
            expected = rouge_scorer.RougeScorer([kind], use_stemmer=stem).score(r, p)
            assert table[column][i] == pytest.approx(expected[kind].fmeasure, abs=1e-6)
    # the stemmer is honoured: "running dogs" meets "dog runs" only when stemmed
    unstemmed = rouge_scorer.RougeScorer(["rougeL"]).score(df.reference[2], df.response[2])
    assert table["rouge/score"][2] > unstemmed["rougeL"].fmeasure
    s = result.summary_metrics
    assert s["row_count"] == 3 and s["exact_match/mean"] == pytest.approx(1 / 3)
    assert s["bleu/std"] == pytest.approx(table["bleu/score"].std())


def test_tool_call_metrics(evaluation):
    import pandas as pd

    reference = call("get_weather", city="Paris", unit="celsius")
    df = pd.DataFrame({
        "response": [reference, call("get_weather", city="paris ", unit="kelvin"),
                     call("get_time", city="Paris"), "not a tool call"],
        "reference": [reference] * 4})
    table = evaluation.EvalTask(dataset=df, metrics=[
        "tool_call_valid", "tool_name_match", "tool_parameter_key_match",
        "tool_parameter_kv_match"]).evaluate().metrics_table
    assert list(table["tool_call_valid/score"]) == [1, 1, 1, 0]
    assert list(table["tool_name_match/score"]) == [1, 1, 0, 0]
    assert list(table["tool_parameter_key_match/score"]) == [1, 1, 0.5, 0]
    # not strict: "paris " matches "Paris"; the unit differs
    assert list(table["tool_parameter_kv_match/score"]) == [1, 0.5, 0.5, 0]


def test_pointwise_and_pairwise_metrics_judged_by_the_local_model(evaluation):
    import pandas as pd
    from vertexai.evaluation import MetricPromptTemplateExamples as Examples
    from vertexai.evaluation import PairwiseMetric, PointwiseMetric

    df = pd.DataFrame({"prompt": ["What is the capital of France?"],
                       "response": ["The capital of France is Paris."],
                       "baseline_model_response": ["Paris."]})
    custom = PointwiseMetric(metric="brevity", metric_prompt_template=(
        "Rate how short the answer is.\n## Rating Rubric\n1: long\n0: short\n"
        "Question: {prompt}\nAnswer: {response}"))
    pairwise = PairwiseMetric(metric="shorter", metric_prompt_template=(
        "Which answer is shorter?\n## Rating Rubric\n`A`: Response A\n`SAME`: equal\n"
        "`B`: Response B\n## Responses\nA: {baseline_model_response}\nB: {response}"))
    task = evaluation.EvalTask(dataset=df, metrics=[Examples.Pointwise.FLUENCY, custom,
                                                    pairwise])
    result = task.evaluate()
    table = result.metrics_table
    assert table["fluency/score"][0] in {1.0, 2.0, 3.0, 4.0, 5.0}
    assert table["brevity/score"][0] in {0.0, 1.0}
    assert table["shorter/pairwise_choice"][0] in {"BASELINE", "CANDIDATE", "TIE"}
    # the explanation says who judged and how sure it was, over the rubric's ratings
    assert "gemma-3-270m" in table["fluency/explanation"][0]
    assert "5: 0." in table["fluency/explanation"][0]
    assert "SAME: 0." in table["shorter/explanation"][0]
    s = result.summary_metrics
    assert s["fluency/mean"] == table["fluency/score"][0]
    assert s["shorter/candidate_model_win_rate"] == float(
        table["shorter/pairwise_choice"][0] == "CANDIDATE")
    again = evaluation.EvalTask(dataset=df, metrics=[custom, pairwise]).evaluate()
    assert again.metrics_table["brevity/score"][0] == table["brevity/score"][0]  # greedy
    assert again.metrics_table["shorter/explanation"][0] == table["shorter/explanation"][0]


def test_model_inference_with_a_prompt_template_logs_to_experiments(evaluation):
    import pandas as pd
    from google.cloud import aiplatform
    from vertexai.generative_models import GenerativeModel

    model = GenerativeModel("gemini-2.5-flash",
                            generation_config={"max_output_tokens": 3, "temperature": 0})
    df = pd.DataFrame({"country": ["France", "Italy"], "reference": ["Paris", "Rome"]})
    task = evaluation.EvalTask(dataset=df, metrics=["exact_match", "rouge_1"],
                               experiment="eval-prompts")
    result = task.evaluate(model=model, prompt_template="The capital of {country} is",
                           experiment_run_name="template-a")
    table = result.metrics_table
    assert list(table["prompt"]) == ["The capital of France is", "The capital of Italy is"]
    assert all(isinstance(r, str) and r for r in table["response"])
    assert result.metadata == {"experiment": "eval-prompts", "experiment_run": "template-a"}
    runs = aiplatform.get_experiment_df("eval-prompts")
    row = runs[runs.run_name == "template-a"].iloc[0]
    assert row["metric.row_count"] == 2
    assert row["metric.rouge_1/mean"] == pytest.approx(result.summary_metrics["rouge_1/mean"])
    assert row["param.model_name"] == "publishers/google/models/gemini-2.5-flash"
    assert row["param.prompt_template"] == "The capital of {country} is"


@pytest.fixture(scope="module")
def service(evaluation):
    from google.cloud.aiplatform import initializer
    from vertexai.evaluation import utils

    return utils.create_evaluation_service_client(), initializer.global_config.project


def test_bad_requests_are_vertex_400s(service):
    from google.api_core import exceptions
    from google.cloud.aiplatform_v1.types import evaluation_service as t

    client, project = service
    location = f"projects/{project}/locations/us-central1"
    pair = [t.RougeInstance(prediction="a", reference="a")]
    P = t.PointwiseMetricInput  # noqa: N806
    bad = [
        t.EvaluateInstancesRequest(location=location),  # no metric input
        t.EvaluateInstancesRequest(location=location, rouge_input=t.RougeInput(
            metric_spec=t.RougeSpec(rouge_type="rougeX"), instances=pair)),
        t.EvaluateInstancesRequest(location=location, rouge_input=t.RougeInput(
            metric_spec=t.RougeSpec(rouge_type="rouge1"), instances=[])),
        t.EvaluateInstancesRequest(location=location, pointwise_metric_input=P(
            metric_spec=t.PointwiseMetricSpec(),
            instance=t.PointwiseMetricInstance(json_instance="{}"))),
        t.EvaluateInstancesRequest(location=location, pointwise_metric_input=P(
            metric_spec=t.PointwiseMetricSpec(metric_prompt_template="Rate {response}"),
            instance=t.PointwiseMetricInstance(json_instance="[1, 2]"))),
        t.EvaluateInstancesRequest(location=location, pointwise_metric_input=P(
            metric_spec=t.PointwiseMetricSpec(metric_prompt_template=(
                "## Rating Rubric\ngood: fine\nbad: not\n{response}")),
            instance=t.PointwiseMetricInstance(json_instance="{}"))),  # ratings not numbers
    ]
    for request in bad:
        with pytest.raises(exceptions.BadRequest):
            client.evaluate_instances(request=request)
    raw = t.EvaluateInstancesRequest(location=location, pointwise_metric_input=P(
        metric_spec=t.PointwiseMetricSpec(
            metric_prompt_template="Rate {response}",
            custom_output_format_config=t.CustomOutputFormatConfig(return_raw_output=True)),
        instance=t.PointwiseMetricInstance(json_instance="{}")))
    legacy = t.EvaluateInstancesRequest(location=location, fluency_input=t.FluencyInput(
        metric_spec=t.FluencySpec(), instance=t.FluencyInstance(prediction="hi")))
    for request in (raw, legacy):
        with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
            client.evaluate_instances(request=request)


def test_a_rouge_request_through_the_client_and_v1beta1(service, local_env):
    import requests
    from google.cloud.aiplatform_v1.types import evaluation_service as t

    client, project = service
    location = f"projects/{project}/locations/us-central1"
    r = client.evaluate_instances(request=t.EvaluateInstancesRequest(
        location=location, rouge_input=t.RougeInput(
            metric_spec=t.RougeSpec(rouge_type="rouge2", split_summaries=True),
            instances=[t.RougeInstance(prediction="a b c", reference="a b d"),
                       t.RougeInstance(prediction="", reference="x")])))
    assert [v.score for v in r.rouge_results.rouge_metric_values] == \
        pytest.approx([0.5, 0.0])
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default()
    credentials.refresh(google.auth.transport.requests.Request())
    answer = requests.post(f"{local_env.endpoint}/v1beta1/{location}:evaluateInstances",
                           json={"exactMatchInput": {"instances": [
                               {"prediction": "x", "reference": "x"}]}},
                           headers={"Authorization": f"Bearer {credentials.token}"})
    assert answer.json() == {"exactMatchResults": {"exactMatchMetricValues": [{"score": 1.0}]}}


def test_pairwise_field_names_and_system_instruction_through_the_client(service):
    from google.api_core import exceptions
    from google.cloud.aiplatform_v1.types import evaluation_service as t

    client, project = service
    location = f"projects/{project}/locations/us-central1"
    template = ("Which is shorter?\n## Rating Rubric\n`A`: A\n`SAME`: same\n`B`: B\n\n"
                "A: {baseline_model_response}\nB: {response}")

    def ask(instance, **names):
        return client.evaluate_instances(request=t.EvaluateInstancesRequest(
            location=location, pairwise_metric_input=t.PairwiseMetricInput(
                metric_spec=t.PairwiseMetricSpec(metric_prompt_template=template,
                                                 system_instruction="Be strict.", **names),
                instance=t.PairwiseMetricInstance(json_instance=json.dumps(instance)))))

    names = {"candidate_response_field_name": "mine", "baseline_response_field_name": "theirs"}
    r = ask({"mine": "Paris.", "theirs": "The capital of France is Paris."}, **names)
    result = r.pairwise_metric_result
    assert result.pairwise_choice.name in {"BASELINE", "CANDIDATE", "TIE"}
    assert "A: " in result.explanation and "SAME: " in result.explanation
    with pytest.raises(exceptions.BadRequest, match="mine"):
        ask({"theirs": "x"}, **names)  # the named candidate field is missing
