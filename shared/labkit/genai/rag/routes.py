"""RAG Engine's v1 (and v1beta1) REST routes: VertexRagDataService (ragCorpora, ragFiles,
ragFiles:import) and VertexRagService's :retrieveContexts, as the Vertex SDK's
`vertexai.rag` sends them. Registered by labkit.genai.routes on its Engine, so corpora
embed with the model already loaded there."""

from __future__ import annotations

from labkit.genai.rag.corpora import RagEngine
from labkit.services.http import Request, Router
from labkit.vertex import errors
from labkit.vertex.resources import page

LOCATION = (r"/v1(?:beta1)?/(?P<parent>projects/(?P<project>[^/]+)/locations/"
            r"(?P<location>[^/:]+))")
CORPUS = (r"/v1(?:beta1)?/(?P<name>projects/[^/]+/locations/[^/:]+/ragCorpora/[^/:]+)")
FILE = CORPUS[:-1] + r"/ragFiles/(?P<file>[^/:]+))"


def register(router: Router, engine, services) -> RagEngine:
    rag = RagEngine(engine, services.vertex_store, services.objects,
                    services.workspace.path("rag"))

    def listing(items, key, r: Request):
        return page(items, key, _arg(r, "pageSize"), _arg(r, "pageToken"))

    add = router.add
    add("POST", LOCATION + r"/ragCorpora", lambda r: rag.create_corpus(r.params["parent"],
                                                                       r.json()))
    add("GET", LOCATION + r"/ragCorpora", lambda r: listing(
        rag.list_corpora(r.params["parent"]), "ragCorpora", r))
    add("GET", CORPUS, lambda r: rag.get_corpus(r.params["name"]))
    add("PATCH", CORPUS, lambda r: rag.update_corpus(r.params["name"], r.json()))
    add("DELETE", CORPUS, lambda r: rag.delete_corpus(r.params["name"]))
    add("POST", CORPUS + r"/ragFiles:import", lambda r: rag.import_files(r.params["name"],
                                                                         r.json()))
    add("POST", CORPUS + r"/ragFiles:upload", _upload_refused)
    add("GET", CORPUS + r"/ragFiles", lambda r: listing(rag.list_files(r.params["name"]),
                                                        "ragFiles", r))
    add("GET", FILE, lambda r: rag.get_file(r.params["name"]))
    add("DELETE", FILE, lambda r: rag.delete_file(r.params["name"]))
    add("POST", LOCATION + r":retrieveContexts", lambda r: _retrieve(rag, r))
    for method in ("asyncRetrieveContexts", "augmentPrompt", "corroborateContent",
                   "askContexts"):
        add("POST", LOCATION + ":" + method, _refused(f"RAG Engine's {method}"))
    return rag


def _arg(r: Request, key: str):
    values = r.query.get(key)
    return values[0] if values else None


def _retrieve(rag: RagEngine, r: Request) -> dict:
    body = r.json()
    unknown = set(body) - {"vertexRagStore", "query", "parent"}
    if unknown:
        raise errors.invalid(f"Invalid JSON payload received. Unknown name "
                             f"\"{sorted(unknown)[0]}\": Cannot find field.")
    if not body.get("vertexRagStore"):
        raise errors.invalid("vertex_rag_store is required (the only data source the "
                             "local RAG Engine retrieves from).")
    query = body.get("query")
    if not isinstance(query, dict):
        raise errors.invalid("query is required.")
    contexts = rag.retrieve(body["vertexRagStore"], query)
    return {"contexts": {"contexts": [c.as_json() for c in contexts]} if contexts else {}}


def _upload_refused(r: Request):
    # The SDK's rag.upload_file posts to https://{api_endpoint}/upload/v1/...: it cannot
    # reach a plain-http local endpoint at all; import_files from Cloud Storage does.
    raise errors.gcp_only("rag.upload_file (use rag.import_files from a gs:// path)")


def _refused(feature: str):
    def handler(r: Request):
        raise errors.gcp_only(feature)
    return handler
