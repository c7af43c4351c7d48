"""RAG Engine's data plane on plain values: corpora (RagManagedDb with the local embedding
model), RagFiles imported from Cloud Storage, and retrieval. Resources live in the Vertex
resource store (JSON); each corpus's chunks and vectors under the workspace's rag/ folder
(a labkit.vectors index saved as .npy + JSON, never pickled).

Google's reference for the shapes: the v1 REST resources projects.locations.ragCorpora,
.ragFiles and :retrieveContexts
(https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.ragCorpora)
and the messages in google/cloud/aiplatform_v1/types/vertex_rag_data.py.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass

import numpy as np

from labkit import vectors
from labkit.genai.engine import EMBEDDING, Engine
from labkit.genai.errors import GenAIError
from labkit.genai.rag import chunking, parsing
from labkit.services.files import write_atomic
from labkit.vertex import errors, operations
from labkit.vertex.store import ResourceStore, new_id, now

DEFAULT_MODEL = "text-embedding-005"  # RagManagedDb's default embedding model
DEFAULT_TOP_K = 10  # RagRetrievalConfig.top_k when unset
WINDOW = 254  # the embedder's 256 tokens less [CLS] and [SEP]
CORPUS_KEYS = {"name", "displayName", "description", "vectorDbConfig", "vertexAiSearchConfig",
               "encryptionSpec", "corpusStatus", "createTime", "updateTime",
               "ragVectorDbConfig", "ragEmbeddingModelConfig"}  # the last two: v1beta1's
IMPORT_KEYS = {"gcsSource", "googleDriveSource", "slackSource", "jiraSource",
               "sharePointSources", "ragFileTransformationConfig", "ragFileParsingConfig",
               "ragFileChunkingConfig", "maxEmbeddingRequestsPerMin", "rebuildAnnIndex",
               "partialFailureGcsSink", "partialFailureBigquerySink", "importResultGcsSink",
               "importResultBigquerySink", "ragFileMetadataConfig"}

STORE_KEYS = {"ragResources", "ragCorpora", "ragRetrievalConfig", "similarityTopK",
              "vectorDistanceThreshold", "storeContext"}


@dataclass
class Context:
    """One retrieved chunk: what retrieveContexts and grounding metadata report."""
    id: str  # the chunk's datapoint in the corpus's index
    corpus: str
    source_uri: str
    display_name: str
    text: str
    distance: float  # cosine distance, 0 (same direction) to 2
    first_page: int | None
    last_page: int | None

    def as_json(self) -> dict:
        out = {"sourceUri": self.source_uri, "sourceDisplayName": self.display_name,
               "text": self.text, "score": self.distance, "chunk": {"text": self.text}}
        if self.first_page is not None:
            out["chunk"]["pageSpan"] = {"firstPage": self.first_page,
                                        "lastPage": self.last_page}
        return out


class RagEngine:
    def __init__(self, engine: Engine, store: ResourceStore, objects, root):
        self.engine = engine  # embeddings (and, for grounding, generation)
        self.store = store
        self.objects = objects  # labkit.storage.engine.Store
        self.root = root  # the workspace's rag/ folder
        self.lock = threading.RLock()
        self._indexes: dict[str, vectors.VectorIndex] = {}

    # ---- corpora

    def create_corpus(self, parent: str, body: dict) -> dict:
        _known(body, CORPUS_KEYS, "RagCorpus")
        if body.get("vertexAiSearchConfig"):
            raise errors.gcp_only("A RagCorpus backed by Vertex AI Search "
                                  "(vertex_ai_search_config)")
        if body.get("encryptionSpec"):
            raise errors.gcp_only("Customer-managed encryption keys for RAG corpora "
                                  "(encryption_spec)")
        display = body.get("displayName")
        if not isinstance(display, str) or not display.strip():
            raise errors.invalid("RagCorpus.display_name is required.")
        if len(display) > 128:
            raise errors.invalid("RagCorpus.display_name can be at most 128 characters.")
        corpus_id = new_id()
        stamp = now()
        corpus = {"name": f"{parent}/ragCorpora/{corpus_id}", "displayName": display,
                  "createTime": stamp, "updateTime": stamp, "corpusStatus": {"state": "ACTIVE"},
                  "vectorDbConfig": self._vector_db(parent, _vector_db_config(body))}
        if body.get("description"):
            corpus["description"] = str(body["description"])
        with self.lock:
            self.store.put("ragCorpora", corpus_id, corpus)
        return operations.done(self.store, corpus["name"], "CreateRagCorpusOperationMetadata",
                               "RagCorpus", corpus)

    def _vector_db(self, parent: str, config: dict) -> dict:
        if not isinstance(config, dict):
            raise errors.invalid("vector_db_config must be an object.")
        for key in ("pinecone", "vertexVectorSearch", "weaviate", "vertexFeatureStore"):
            if config.get(key):
                raise errors.gcp_only(f"A RagCorpus on an external vector database ({key})")
        if config.get("apiAuth"):
            raise errors.gcp_only("api_auth for a RagCorpus's vector database")
        unknown = set(config) - {"ragManagedDb", "ragEmbeddingModelConfig", "pinecone",
                                 "vertexVectorSearch", "weaviate", "apiAuth"}
        if unknown:
            raise _unknown_field(sorted(unknown)[0], "RagVectorDbConfig")
        managed = config.get("ragManagedDb") or {}
        if managed.get("ann"):
            raise errors.gcp_only("RagManagedDb's ANN retrieval strategy (rag_managed_db.ann); "
                                  "the local corpus searches exactly (KNN)")
        model = config.get("ragEmbeddingModelConfig") or {}
        endpoint = (model.get("vertexPredictionEndpoint") or {}).get("endpoint") or \
            f"{parent}/publishers/google/models/{DEFAULT_MODEL}"
        if model.get("vertexPredictionEndpoint", {}).get("model") or \
                set(model) - {"vertexPredictionEndpoint"}:
            raise errors.gcp_only("Embedding models other than Google's publisher models "
                                  "for a RagCorpus")
        if "/publishers/google/models/" not in endpoint:
            raise errors.gcp_only(f"Embedding with a deployed endpoint ({endpoint}) for a "
                                  f"RagCorpus")
        name = endpoint.rsplit("/", 1)[-1]
        if name not in EMBEDDING:
            raise errors.invalid(f"Embedding model {name} is not supported for RAG; the local "
                                 f"Vertex AI embeds with {', '.join(EMBEDDING)}.")
        return {"ragManagedDb": {"knn": {}},
                "ragEmbeddingModelConfig": {"vertexPredictionEndpoint": {"endpoint": endpoint}}}

    def get_corpus(self, name: str) -> dict:
        corpus = self.store.get("ragCorpora", name.rsplit("/", 1)[-1])
        if corpus is None or corpus["name"] != name:
            raise errors.not_found("RagCorpus", name)
        return corpus

    def list_corpora(self, parent: str) -> list[dict]:
        return sorted((c for c in self.store.all("ragCorpora")
                       if c["name"].startswith(parent + "/ragCorpora/")),
                      key=lambda c: c["createTime"])

    def update_corpus(self, name: str, body: dict) -> dict:
        _known(body, CORPUS_KEYS, "RagCorpus")
        with self.lock:
            corpus = self.get_corpus(name)
            if _vector_db_config(body) and self._vector_db(
                    name.rsplit("/ragCorpora/", 1)[0], _vector_db_config(body)) \
                    != corpus["vectorDbConfig"]:
                raise errors.invalid("The vector database and embedding model of a RagCorpus "
                                     "cannot be changed after creation.")
            for key in ("displayName", "description"):
                if body.get(key):
                    corpus[key] = str(body[key])
            corpus["updateTime"] = now()
            self.store.put("ragCorpora", name.rsplit("/", 1)[-1], corpus)
        return operations.done(self.store, name, "UpdateRagCorpusOperationMetadata",
                               "RagCorpus", corpus)

    def delete_corpus(self, name: str) -> dict:
        """DeleteRagCorpusRequest.force documents that without it a corpus holding files is
        refused, but the SDK's rag.delete_corpus never sends force and Google's own
        notebooks clean up non-empty corpora with it, so files go with the corpus here."""
        with self.lock:
            corpus = self.get_corpus(name)
            for rag_file in self._files(corpus["name"]):
                self.store.delete("ragFiles", rag_file["name"].rsplit("/", 1)[-1])
            self.store.delete("ragCorpora", name.rsplit("/", 1)[-1])
            self._indexes.pop(name, None)
            shutil.rmtree(self._folder(name), ignore_errors=True)
        return operations.done(self.store, name, "DeleteOperationMetadata", None)

    # ---- files

    def _files(self, corpus: str) -> list[dict]:
        return sorted((f for f in self.store.all("ragFiles")
                       if f["name"].startswith(corpus + "/ragFiles/")),
                      key=lambda f: f["createTime"])

    def list_files(self, corpus: str) -> list[dict]:
        self.get_corpus(corpus)
        return [_public(f) for f in self._files(corpus)]

    def get_file(self, name: str) -> dict:
        corpus = name.split("/ragFiles/")[0]
        self.get_corpus(corpus)
        rag_file = self.store.get("ragFiles", name.rsplit("/", 1)[-1])
        if rag_file is None or rag_file["name"] != name:
            raise errors.not_found("RagFile", name)
        return _public(rag_file)

    def delete_file(self, name: str) -> dict:
        with self.lock:
            self.get_file(name)
            corpus = name.split("/ragFiles/")[0]
            file_id = name.rsplit("/", 1)[-1]
            index = self._index(corpus)
            index.remove([p for p in index.ids() if p.split(":")[0] == file_id])
            self._save(corpus, index)
            (self._folder(corpus) / "chunks" / f"{file_id}.json").unlink(missing_ok=True)
            self.store.delete("ragFiles", file_id)
        return operations.done(self.store, name, "DeleteOperationMetadata", None)

    # ---- import

    def import_files(self, corpus_name: str, body: dict) -> dict:
        corpus = self.get_corpus(corpus_name)
        config = body.get("importRagFilesConfig")
        if not isinstance(config, dict):
            raise errors.invalid("import_rag_files_config is required.")
        _known(config, IMPORT_KEYS, "ImportRagFilesConfig")
        for key, what in (("googleDriveSource", "Importing from Google Drive"),
                          ("slackSource", "Importing from Slack"),
                          ("jiraSource", "Importing from Jira"),
                          ("sharePointSources", "Importing from SharePoint"),
                          ("partialFailureBigquerySink", "A BigQuery sink for import results"),
                          ("importResultBigquerySink", "A BigQuery sink for import results"),
                          ("partialFailureGcsSink", "A Cloud Storage sink for import results"),
                          ("importResultGcsSink", "A Cloud Storage sink for import results"),
                          ("ragFileMetadataConfig", "Metadata files for imported RagFiles")):
            if config.get(key):
                raise errors.gcp_only(what)
        parsing_config = config.get("ragFileParsingConfig") or {}
        if parsing_config.get("layoutParser"):
            raise errors.gcp_only("Parsing with a Document AI layout parser (layout_parser)")
        if parsing_config.get("llmParser"):
            raise errors.gcp_only("Parsing with an LLM parser (llm_parser)")
        uris = (config.get("gcsSource") or {}).get("uris")
        if not isinstance(uris, list) or not uris or \
                not all(isinstance(u, str) and u.startswith("gs://") for u in uris):
            raise errors.invalid("import_rag_files_config.gcs_source.uris: at least one "
                                 "gs:// URI is required.")
        size, overlap = self._chunking(config)
        rate = config.get("maxEmbeddingRequestsPerMin") or 1000
        try:
            rate = int(rate)
        except (TypeError, ValueError):
            raise errors.invalid(f"Invalid max_embedding_requests_per_min: {rate!r}") from None
        if rate <= 0:
            raise errors.invalid("max_embedding_requests_per_min must be positive.")
        counts = {"imported": 0, "failed": 0, "skipped": 0}
        failures = []
        with self.lock:
            pacer = _Pacer(rate)
            index = self._index(corpus["name"])
            for uri, found in self._expand(uris):
                if isinstance(found, str):  # an error message
                    counts["failed"] += 1
                    failures.append({"code": 3, "message": f"{uri}: {found}"})
                    continue
                outcome = self._import_one(corpus, index, uri, found, size, overlap, pacer)
                if outcome not in counts:
                    counts["failed"] += 1
                    failures.append({"code": 3, "message": f"{uri}: {outcome}"})
                else:
                    counts[outcome] += 1
            self._save(corpus["name"], index)
        response = {}
        for key, field in (("imported", "importedRagFilesCount"),
                           ("failed", "failedRagFilesCount"),
                           ("skipped", "skippedRagFilesCount")):
            if counts[key]:
                response[field] = str(counts[key])  # int64 as JSON strings
        operation = operations.done(self.store, corpus["name"],
                                    "ImportRagFilesOperationMetadata", "ImportRagFilesResponse",
                                    response)
        if failures:
            operation["metadata"]["genericMetadata"]["partialFailures"] = failures
            self.store.put("operations", operation["name"].rsplit("/", 1)[-1], operation)
        return operation

    @staticmethod
    def _chunking(config: dict) -> tuple[int, int]:
        transformation = config.get("ragFileTransformationConfig") or {}
        chunk_config = (transformation.get("ragFileChunkingConfig") or
                        config.get("ragFileChunkingConfig") or {})
        fixed = chunk_config.get("fixedLengthChunking", chunk_config)
        size = fixed.get("chunkSize", chunking.DEFAULT_SIZE)
        overlap = fixed.get("chunkOverlap", 0 if "chunkSize" in fixed
                            else chunking.DEFAULT_OVERLAP)
        try:
            return chunking.check(size, overlap)
        except chunking.ChunkingError as exc:
            raise errors.invalid(str(exc)) from None

    def _expand(self, uris: list[str]):
        """(uri, object resource) for each file a URI names: the object itself, or every
        object under it as a folder; (uri, message) when it names nothing readable."""
        for uri in uris:
            bucket, _, path = uri[len("gs://"):].partition("/")
            try:
                self.objects.get_bucket(bucket)
            except Exception:  # noqa: BLE001 - the Store raises Cloud Storage's 404
                yield uri, f"bucket {bucket} does not exist"
                continue
            if path and not path.endswith("/"):
                try:
                    resource = self.objects.get_object(bucket, path)
                except Exception:  # noqa: BLE001 - not one object: a folder, perhaps
                    resource = None
                if resource is not None:
                    yield uri, resource
                    continue
            prefix = path if not path or path.endswith("/") else path + "/"
            names = [n for n in self.objects.iter_names(bucket, prefix) if not n.endswith("/")]
            if not names:
                yield uri, "no such object or folder"
            for name in names:
                yield f"gs://{bucket}/{name}", self.objects.get_object(bucket, name)

    def _import_one(self, corpus: dict, index, uri: str, resource: dict, size: int,
                    overlap: int, pacer) -> str:
        """'imported' or 'skipped', or the reason the file failed."""
        version = resource.get("generation", "")
        same = [f for f in self._files(corpus["name"]) if f["gcsSource"]["uris"] == [uri]]
        if same and same[0].get("_generation") == version and \
                same[0].get("_chunking") == [size, overlap]:
            return "skipped"
        try:
            kind = parsing.kind_of(resource["name"], resource.get("contentType"))
            data = self.objects.read_range(resource["bucket"], resource["name"], None)[0]
            text, page_starts = parsing.text_of(data, kind)
        except parsing.UnsupportedFile as exc:
            return str(exc)
        if not text.strip():
            return "the file has no text to index"
        tokenizer = self.engine.embedder.tokenizer
        offsets = tokenizer.encode(text, add_special_tokens=False).offsets
        chunks = chunking.chunk(text, offsets, size, overlap)
        try:
            matrix = np.array([self._embed(c.text, pacer) for c in chunks], np.float32)
        except GenAIError as exc:
            return exc.message
        file_id = same[0]["name"].rsplit("/", 1)[-1] if same else new_id()
        stamp = now()
        rag_file = {"name": f"{corpus['name']}/ragFiles/{file_id}",
                    "displayName": uri.rsplit("/", 1)[-1], "gcsSource": {"uris": [uri]},
                    "createTime": same[0]["createTime"] if same else stamp,
                    "updateTime": stamp, "fileStatus": {"state": "ACTIVE"},
                    "_generation": version, "_chunking": [size, overlap]}
        if same:
            index.remove([p for p in index.ids() if p.split(":")[0] == file_id])
        records = [{"text": c.text, **_pages(c, page_starts)} for c in chunks]
        write_atomic(self._folder(corpus["name"]) / "chunks" / f"{file_id}.json",
                     json.dumps({"uri": uri, "displayName": rag_file["displayName"],
                                 "chunks": records}))
        index.upsert([vectors.Datapoint(f"{file_id}:{i}", tuple(v), restricts=(
            vectors.Restrict("file", (file_id,)),)) for i, v in enumerate(matrix)])
        self.store.put("ragFiles", file_id, rag_file)
        return "imported"

    def _embed(self, text: str, pacer) -> np.ndarray:
        return embed_text(self.engine, text, pacer.wait)

    # ---- retrieval

    def retrieve(self, store: dict, query: dict | str) -> list[Context]:
        """`store`: a VertexRagStore; `query`: a RagQuery (or its text)."""
        if not isinstance(store, dict):
            raise errors.invalid("vertex_rag_store must be an object.")
        _known(store, STORE_KEYS, "VertexRagStore")
        if store.get("storeContext"):
            raise errors.gcp_only("vertex_rag_store.store_context (the Live API's)")
        resources = store.get("ragResources") or []
        if store.get("ragCorpora"):
            resources = [{"ragCorpus": c} for c in store["ragCorpora"]]
        if not isinstance(resources, list) or not resources:
            raise errors.invalid("vertex_rag_store.rag_resources: one RagResource is required.")
        if len(resources) > 1:
            raise errors.invalid("Currently only one RagResource (one corpus) is supported "
                                 "in vertex_rag_store.rag_resources.")
        resource = resources[0]
        corpus = self.get_corpus(str(resource.get("ragCorpus", "")))
        text = query if isinstance(query, str) else query.get("text")
        if not isinstance(text, str) or not text.strip():
            raise errors.invalid("query.text is required.")
        config = {} if isinstance(query, str) else dict(query.get("ragRetrievalConfig") or {})
        config.update(store.get("ragRetrievalConfig") or {})
        top_k, distance_max, similarity_min = _retrieval_config(config, query, store)
        file_ids = [str(i) for i in resource.get("ragFileIds") or []]
        for file_id in file_ids:
            self.get_file(f"{corpus['name']}/ragFiles/{file_id}")
        with self.lock:
            index = self._index(corpus["name"])
            if not len(index):
                return []
            query_vector = self._embed(text, _Pacer(None))
            restricts = (vectors.Restrict("file", tuple(file_ids)),) if file_ids else ()
            found = index.search(query_vector, min(top_k, len(index)), restricts=restricts)[0]
            chunks = {}
            out = []
            for neighbor in found:
                distance = 1.0 - neighbor.distance  # the index reports cosine similarity
                if distance_max is not None and distance > distance_max:
                    continue
                if similarity_min is not None and neighbor.distance < similarity_min:
                    continue
                file_id, number = neighbor.id.split(":")
                if file_id not in chunks:
                    chunks[file_id] = json.loads((self._folder(corpus["name"]) / "chunks"
                                                  / f"{file_id}.json").read_text())
                record = chunks[file_id]["chunks"][int(number)]
                source = chunks[file_id]
                out.append(Context(neighbor.id, corpus["name"], source["uri"],
                                   source["displayName"], record["text"], round(distance, 6),
                                   record.get("firstPage"), record.get("lastPage")))
        return out

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return np.array([self._embed(t, _Pacer(None)) for t in texts], np.float32)

    # ---- storage

    def _folder(self, corpus: str):
        return self.root / corpus.rsplit("/", 1)[-1]

    def _index(self, corpus: str) -> vectors.VectorIndex:
        if corpus not in self._indexes:
            folder = self._folder(corpus) / "index"
            self._indexes[corpus] = vectors.VectorIndex.load(folder) \
                if (folder / "index.json").exists() else \
                vectors.VectorIndex(384, distance="COSINE_DISTANCE")
        return self._indexes[corpus]

    def _save(self, corpus: str, index) -> None:
        index.save(self._folder(corpus) / "index")


def embed_text(engine: Engine, text: str, before=None) -> np.ndarray:
    """A unit vector for a chunk or a query. A text longer than the embedder's 256 tokens is
    embedded window by window and the windows' mean taken (text-embedding-005 reads 2,048
    tokens, MiniLM 256). `before(n)`: called with the number of embedding requests."""
    offsets = engine.embedder.tokenizer.encode(text, add_special_tokens=False).offsets
    pieces = [text[offsets[i][0]:offsets[min(i + WINDOW, len(offsets)) - 1][1]]
              for i in range(0, len(offsets), WINDOW)] or [text]
    if before is not None:
        before(len(pieces))
    rows = np.array([v["values"] for v in engine.embed(pieces, None, True)])
    mean = rows.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


class _Pacer:
    """max_embedding_requests_per_min: waits so embedding requests keep under the rate."""

    def __init__(self, per_minute: int | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next = time.monotonic()

    def wait(self, requests: int = 1) -> None:
        if not self.interval:
            return
        delay = self.next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self.next = max(self.next, time.monotonic()) + self.interval * requests


def _retrieval_config(config: dict, query, store: dict):
    unknown = set(config) - {"topK", "filter", "ranking", "hybridSearch"}
    if unknown:
        raise _unknown_field(sorted(unknown)[0], "RagRetrievalConfig")
    if config.get("hybridSearch"):
        raise errors.gcp_only("Hybrid search in RAG retrieval (hybrid_search)")
    ranking = config.get("ranking") or {}
    if ranking.get("rankService") or ranking.get("llmRanker"):
        raise errors.gcp_only("Reranking retrieved contexts (rank_service, llm_ranker)")
    top_k = config.get("topK") or (query.get("similarityTopK") if isinstance(query, dict)
                                   else None) or store.get("similarityTopK") or DEFAULT_TOP_K
    try:
        top_k = int(top_k)
    except (TypeError, ValueError):
        raise errors.invalid(f"Invalid top_k: {top_k!r}") from None
    if top_k <= 0:
        raise errors.invalid(f"top_k must be positive, got {top_k}.")
    flt = config.get("filter") or {}
    if flt.get("metadataFilter"):
        raise errors.gcp_only("Metadata filters in RAG retrieval (metadata_filter)")
    distance = flt.get("vectorDistanceThreshold", store.get("vectorDistanceThreshold"))
    similarity = flt.get("vectorSimilarityThreshold")
    if distance is not None and similarity is not None:
        raise errors.invalid("Only one of vector_distance_threshold and "
                             "vector_similarity_threshold can be set.")
    for value in (distance, similarity):
        if value is not None and (isinstance(value, bool) or
                                  not isinstance(value, int | float)):
            raise errors.invalid(f"Invalid vector threshold: {value!r}")
    return top_k, distance, similarity


def _vector_db_config(body: dict) -> dict:
    """v1's vectorDbConfig, or v1beta1's older ragVectorDbConfig and ragEmbeddingModelConfig
    (what vertexai.preview.rag sends)."""
    config = body.get("vectorDbConfig") or body.get("ragVectorDbConfig") or {}
    if body.get("ragEmbeddingModelConfig") and isinstance(config, dict):
        config = {**config, "ragEmbeddingModelConfig": body["ragEmbeddingModelConfig"]}
    return config


def _pages(c: chunking.Chunk, page_starts: list[int]) -> dict:
    if not page_starts:
        return {}
    first = sum(1 for s in page_starts if s <= c.start)
    last = sum(1 for s in page_starts if s < c.end)
    return {"firstPage": first, "lastPage": last}


def _public(rag_file: dict) -> dict:
    return {k: v for k, v in rag_file.items() if not k.startswith("_")}


def _known(body: dict, keys: set[str], message: str) -> None:
    if not isinstance(body, dict):
        raise errors.invalid(f"{message} must be a JSON object.")
    unknown = set(body) - keys
    if unknown:
        raise _unknown_field(sorted(unknown)[0], message)


def _unknown_field(name: str, message: str) -> errors.VertexError:
    return errors.invalid(f"Invalid JSON payload received. Unknown name \"{name}\" at "
                          f"'{message}': Cannot find field.")
