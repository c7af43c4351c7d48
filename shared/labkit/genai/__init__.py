"""The local generative AI service behind Google's Gen AI SDK (google-genai, Vertex mode).

`client_environment()` gives the variables that make `genai.Client()` with no arguments
talk to the local services; `routes` is the wire (Vertex's REST shapes), the engine
modules take plain values (`engine`, `generation`, `constrained`, `embeddings`), and
`errors` maps their refusals to Vertex's google.rpc.Status errors at one boundary.
"""

from __future__ import annotations

HOST = "aiplatform.googleapis.com"


def client_environment(endpoint: str, project: str, region: str) -> dict[str, str]:
    """What google-genai reads (google/genai/_base_url.py, _api_client.py): Vertex mode,
    the project and region, and the base URL of the local services. Auth is the
    workspace's Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS).

    Two facts of google-genai 2.34 shape this: a base URL that does not end in
    `.googleapis.com` makes it drop project and location and post every call to the bare
    URL (an API-gateway mode), so ours ends with the host it stands in for; and
    `genai.Client()` without `vertexai=True` looks the base URL up under the Gemini
    Developer API's variable before it reads GOOGLE_GENAI_USE_VERTEXAI, so both are set."""
    base = f"{endpoint.rstrip('/')}/{HOST}"
    return {
        "GOOGLE_GENAI_USE_VERTEXAI": "true",
        "GOOGLE_CLOUD_PROJECT": project,
        "GOOGLE_CLOUD_LOCATION": region,
        "GOOGLE_VERTEX_BASE_URL": base,
        "GOOGLE_GEMINI_BASE_URL": base,
    }
