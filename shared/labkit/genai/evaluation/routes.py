"""The wire of the Gen AI evaluation service: POST .../locations/L:evaluateInstances
(v1 and v1beta1), the EvaluateInstancesRequest oneof of inputs in and the matching
results out, in the JSON names the Vertex AI SDK's REST transport sends and parses
(google.cloud.aiplatform_v1.types.evaluation_service)."""

from __future__ import annotations

from labkit.genai.engine import Engine
from labkit.genai.errors import GenAIError, InvalidArgument, NotLocal
from labkit.genai.evaluation import computation
from labkit.genai.evaluation.judge import Judge, instance_of
from labkit.services.http import Request, Router
from labkit.vertex.errors import VertexError

PATH = (r"(?:/aiplatform\.googleapis\.com)?/v1(?:beta1)?/projects/(?P<project>[^/]+)"
        r"/locations/(?P<location>[^/:]+):evaluateInstances")

# input field -> (results field, metric values field, score(prediction, reference, spec))
COMPUTED = {
    "exactMatchInput": ("exactMatchResults", "exactMatchMetricValues",
                        lambda p, r, s: computation.exact_match(p, r)),
    "bleuInput": ("bleuResults", "bleuMetricValues",
                  lambda p, r, s: computation.bleu(p, r, bool(s.get("useEffectiveOrder")))),
    "rougeInput": ("rougeResults", "rougeMetricValues",
                   lambda p, r, s: computation.rouge(p, r, s.get("rougeType", ""),
                                                     bool(s.get("useStemmer")),
                                                     bool(s.get("splitSummaries")))),
    "toolCallValidInput": ("toolCallValidResults", "toolCallValidMetricValues",
                           lambda p, r, s: computation.tool_call_valid(p, r)),
    "toolNameMatchInput": ("toolNameMatchResults", "toolNameMatchMetricValues",
                           lambda p, r, s: computation.tool_name_match(p, r)),
    "toolParameterKeyMatchInput": ("toolParameterKeyMatchResults",
                                   "toolParameterKeyMatchMetricValues",
                                   lambda p, r, s: computation.tool_parameter_key_match(p, r)),
    "toolParameterKvMatchInput": ("toolParameterKvMatchResults",
                                  "toolParameterKvMatchMetricValues",
                                  lambda p, r, s: computation.tool_parameter_kv_match(
                                      p, r, bool(s.get("useStrictStringMatch")))),
}
SPEC_KEYS = {"exactMatchInput": set(), "bleuInput": {"useEffectiveOrder"},
             "rougeInput": {"rougeType", "useStemmer", "splitSummaries"},
             "toolCallValidInput": set(), "toolNameMatchInput": set(),
             "toolParameterKeyMatchInput": set(),
             "toolParameterKvMatchInput": {"useStrictStringMatch"},
             "pointwiseMetricInput": {"metricPromptTemplate", "systemInstruction",
                                      "customOutputFormatConfig"},
             "pairwiseMetricInput": {"metricPromptTemplate", "systemInstruction",
                                     "customOutputFormatConfig", "candidateResponseFieldName",
                                     "baselineResponseFieldName"}}
# The older one-metric inputs (fluencyInput, ...), translation models, agent trajectories and
# v1beta1's metrics/instance form (vertexai.Client().evals): Google only.
NOT_LOCAL = {"fluencyInput", "coherenceInput", "safetyInput", "groundednessInput",
             "fulfillmentInput", "summarizationQualityInput",
             "pairwiseSummarizationQualityInput", "summarizationHelpfulnessInput",
             "summarizationVerbosityInput", "questionAnsweringQualityInput",
             "pairwiseQuestionAnsweringQualityInput", "questionAnsweringRelevanceInput",
             "questionAnsweringHelpfulnessInput", "questionAnsweringCorrectnessInput",
             "cometInput", "metricxInput", "trajectoryExactMatchInput",
             "trajectoryInOrderMatchInput", "trajectoryAnyOrderMatchInput",
             "trajectoryPrecisionInput", "trajectoryRecallInput",
             "trajectorySingleToolUseInput", "rubricBasedInstructionFollowingInput",
             "instance", "metrics", "metricSources", "autoraterConfig"}
MAX_INSTANCES = 1000


def register(router: Router, engine: Engine) -> None:
    judge = Judge(engine)

    def evaluate(request: Request):
        try:
            return evaluate_instances(judge, request.json())
        except GenAIError as exc:
            raise VertexError(exc.status, exc.message) from None

    router.add("POST", PATH, evaluate)


def evaluate_instances(judge: Judge, body: dict) -> dict:
    if not isinstance(body, dict):
        raise InvalidArgument("The request must be an EvaluateInstancesRequest object.")
    known = set(SPEC_KEYS) | NOT_LOCAL | {"location"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidArgument(f"Invalid JSON payload received. Unknown name \"{unknown[0]}\": "
                              f"Cannot find field.")
    inputs = [k for k in body if k != "location"]
    if len(inputs) != 1:
        raise InvalidArgument("EvaluateInstancesRequest needs exactly one metric input "
                              f"(got {len(inputs)}: {', '.join(inputs) or 'none'}).")
    kind = inputs[0]
    if kind in NOT_LOCAL:
        raise NotLocal(f"The {kind} metric input (use pointwise_metric_input or "
                       f"pairwise_metric_input with a metric prompt template)")
    value = body[kind]
    if not isinstance(value, dict):
        raise InvalidArgument(f"{kind} must be an object.")
    spec = value.get("metricSpec")
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise InvalidArgument(f"{kind}.metric_spec must be an object.")
    bad = sorted(set(spec) - SPEC_KEYS[kind])
    if bad:
        raise InvalidArgument(f"Invalid JSON payload received. Unknown name \"{bad[0]}\" at "
                              f"'{kind}.metric_spec': Cannot find field.")
    if kind in COMPUTED:
        return _computed(kind, value, spec)
    return _model_based(judge, kind, value, spec)


def _computed(kind: str, value: dict, spec: dict) -> dict:
    results, values, score = COMPUTED[kind]
    if kind == "rougeInput":
        computation.check_rouge_type(spec.get("rougeType", ""))
    instances = value.get("instances")
    if not isinstance(instances, list) or not instances:
        raise InvalidArgument(f"{kind}.instances: at least one instance is required.")
    if len(instances) > MAX_INSTANCES:
        raise InvalidArgument(f"{kind}.instances: {len(instances)} instances are more than "
                              f"{MAX_INSTANCES}.")
    out = []
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict) or set(instance) - {"prediction", "reference"}:
            raise InvalidArgument(f"{kind}.instances[{i}] takes prediction and reference.")
        # proto3 JSON leaves empty strings out, so a missing field is the empty text
        prediction, reference = instance.get("prediction", ""), instance.get("reference", "")
        if not isinstance(prediction, str) or not isinstance(reference, str):
            raise InvalidArgument(f"{kind}.instances[{i}]: prediction and reference are "
                                  f"strings.")
        out.append({"score": score(prediction, reference, spec)})
    return {results: {values: out}}


def _model_based(judge: Judge, kind: str, value: dict, spec: dict) -> dict:
    template = spec.get("metricPromptTemplate")
    if not isinstance(template, str) or not template.strip():
        raise InvalidArgument(f"{kind}.metric_spec.metric_prompt_template is required.")
    output = spec.get("customOutputFormatConfig") or {}
    if not isinstance(output, dict):
        raise InvalidArgument("custom_output_format_config must be an object.")
    if output.get("returnRawOutput"):
        raise NotLocal("custom_output_format_config.return_raw_output (the judge's raw text)")
    system = spec.get("systemInstruction") or ""
    if not isinstance(system, str):
        raise InvalidArgument("metric_spec.system_instruction must be a string.")
    holder = value.get("instance")
    if not isinstance(holder, dict) or set(holder) - {"jsonInstance", "contentMapInstance"}:
        raise InvalidArgument(f"{kind}.instance must be a PointwiseMetricInstance with "
                              f"json_instance.")
    if "contentMapInstance" in holder:
        raise NotLocal("instance.content_map_instance (multimodal instances)")
    instance = instance_of(holder.get("jsonInstance"))
    prompt = (system + "\n\n" + template) if system else template
    if kind == "pointwiseMetricInput":
        return {"pointwiseMetricResult": judge.pointwise(prompt, instance)}
    for field, default in (("candidateResponseFieldName", "response"),
                           ("baselineResponseFieldName", "baseline_model_response")):
        name = spec.get(field)
        if name and name != default:
            if name not in instance:
                raise InvalidArgument(f"metric_spec.{field} {name!r} is not a field of the "
                                      f"instance.")
            instance[default] = instance[name]
    return {"pairwiseMetricResult": judge.pairwise(prompt, instance)}
