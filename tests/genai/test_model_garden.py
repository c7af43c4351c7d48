"""Model Garden's open-model flow through the Vertex SDK as installed
(vertexai.model_garden): list, deploy options, deploy to an endpoint, and predict in the
vLLM container's request format, answered by the local Gemma 3 270M."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("local_env")
GEMMA = "google/gemma3@gemma-3-270m"


@pytest.fixture(scope="module")
def deployed(local_env):
    from vertexai import model_garden

    endpoint = model_garden.OpenModel(GEMMA).deploy(accept_eula=True,
                                                   endpoint_display_name="gemma-mg")
    yield endpoint
    endpoint.delete(force=True)


def test_list_and_deploy_options():
    from vertexai import model_garden

    assert GEMMA in model_garden.list_deployable_models(model_filter="gemma")
    assert model_garden.list_deployable_models(model_filter="llama") == []
    options = model_garden.OpenModel(GEMMA).list_deploy_options()
    assert "pytorch-vllm-serve" in options[0].container_spec.image_uri
    assert options[0].dedicated_resources.machine_spec.machine_type == "g2-standard-12"
    text = model_garden.OpenModel(GEMMA).list_deploy_options(concise=True)
    assert 'machine_type="g2-standard-12"' in text and "NVIDIA_L4" in text


def test_deploy_gives_an_endpoint_the_local_gemma_answers(deployed):
    from google.cloud import aiplatform

    r = deployed.predict(instances=[{"prompt": "What is the capital of France?",
                                     "max_tokens": 8, "temperature": 0}])
    assert r.predictions[0].startswith("Prompt:\nWhat is the capital of France?\nOutput:\n")
    assert "Paris" in r.predictions[0]
    raw = deployed.predict(instances=[{"prompt": "What is the capital of France?",
                                       "max_tokens": 8, "temperature": 0,
                                       "raw_response": True}])
    assert raw.predictions[0] == r.predictions[0].split("Output:\n", 1)[1]
    endpoint = aiplatform.Endpoint(deployed.resource_name)
    assert endpoint.display_name == "gemma-mg"
    model = aiplatform.Model(endpoint.list_models()[0].model)
    assert model.gca_resource.model_source_info.source_type.name == "MODEL_GARDEN"
    assert endpoint.list_models()[0].dedicated_resources.machine_spec.accelerator_type.name == \
        "NVIDIA_L4"


def test_bad_predictions_are_400s(deployed):
    from google.api_core import exceptions

    for instances in ([{"max_tokens": 4}], [{"prompt": "x", "max_tokens": 0}],
                      [{"prompt": "x", "temperature": 3}], [{"prompt": "x", "beam": 2}]):
        with pytest.raises(exceptions.BadRequest):
            deployed.predict(instances=instances)
    with pytest.raises(exceptions.BadRequest, match="in each instance"):
        deployed.predict(instances=[{"prompt": "x"}], parameters={"max_tokens": 4})


def test_what_is_not_local_is_refused_clearly():
    from google.api_core import exceptions
    from vertexai import model_garden

    with pytest.raises(exceptions.NotFound):
        model_garden.OpenModel("google/gemma3@gemma-9-1t").list_deploy_options()
    with pytest.raises(exceptions.NotFound):
        model_garden.OpenModel("meta/llama3@llama-3-8b").deploy(accept_eula=True)
    with pytest.raises(exceptions.GoogleAPICallError) as info:
        model_garden.OpenModel("google/gemma3@gemma-3-1b-it").deploy(accept_eula=True)
    assert info.value.code == 501 and "gemma-3-270m" in info.value.message
    with pytest.raises(exceptions.BadRequest, match="Gemma Terms of Use"):  # FAILED_PRECONDITION
        model_garden.OpenModel(GEMMA).deploy()
    with pytest.raises(exceptions.BadRequest, match="Machine type"):
        model_garden.OpenModel(GEMMA).deploy(accept_eula=True, machine_type="n9-giant-1")
