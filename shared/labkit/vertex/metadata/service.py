"""Vertex ML Metadata and Tensorboard REST v1 routes: HTTP <-> the metadata engine."""

from __future__ import annotations

from labkit.services.http import Request, Router
from labkit.vertex.metadata.engine import store_name
from labkit.vertex.metadata.tensorboards import TensorboardChildren, Tensorboards
from labkit.vertex.routes import PARENT, parent_of, query_of

STORE = PARENT + r"/metadataStores/(?P<store>[^/:]+)"
TENSORBOARD = PARENT + r"/tensorboards/(?P<tensorboard>[^/:]+)"

def register(router: Router, services) -> None:
    metadata = services.metadata
    tensorboards = Tensorboards(metadata.store)
    children = TensorboardChildren(metadata.store)
    add = router.add

    def name(r: Request, kind: str) -> str:
        return f"{parent_of(r)}/metadataStores/{r.params['store']}/{kind}/{r.params['id']}"

    add("GET", STORE, lambda r: metadata.get_store(parent_of(r), r.params["store"]))
    add("POST", PARENT + r"/metadataStores",
        lambda r: metadata.create_store(parent_of(r), r.arg("metadataStoreId")))

    for kind, id_arg in (("artifacts", "artifactId"), ("executions", "executionId"),
                         ("contexts", "contextId")):
        one = STORE + f"/{kind}/(?P<id>[^/:]+)"
        add("POST", STORE + f"/{kind}",
            lambda r, k=kind, a=id_arg: metadata.create(
                k, store_name(parent_of(r)), r.json(), r.arg(a)))
        add("GET", STORE + f"/{kind}",
            lambda r, k=kind: metadata.list(k, store_name(parent_of(r)), query_of(r)))
        add("GET", one, lambda r, k=kind: metadata.get(k, name(r, k)))
        add("PATCH", one, lambda r, k=kind: metadata.patch(
            k, name(r, k), r.json(), r.arg("updateMask"),
            (r.arg("allowMissing") or "").lower() == "true"))
        add("DELETE", one, lambda r, k=kind: metadata.delete(k, name(r, k)))

    context = STORE + r"/contexts/(?P<id>[^/:]+)"
    add("POST", context + r":addContextArtifactsAndExecutions",
        lambda r: metadata.add_to_context(name(r, "contexts"), r.json().get("artifacts", []),
                                          r.json().get("executions", [])))
    add("POST", context + r":addContextChildren",
        lambda r: metadata.add_children(name(r, "contexts"), r.json().get("childContexts", [])))
    add("POST", context + r":removeContextChildren",
        lambda r: metadata.remove_children(name(r, "contexts"),
                                           r.json().get("childContexts", [])))
    add("GET", context + r":queryContextLineageSubgraph",
        lambda r: metadata.context_lineage(name(r, "contexts")))
    execution = STORE + r"/executions/(?P<id>[^/:]+)"
    add("POST", execution + r":addExecutionEvents",
        lambda r: metadata.add_events(name(r, "executions"), r.json().get("events", [])))
    add("GET", execution + r":queryExecutionInputsAndOutputs",
        lambda r: metadata.execution_io(name(r, "executions")))
    add("GET", STORE + r"/artifacts/(?P<id>[^/:]+):queryArtifactLineageSubgraph",
        lambda r: metadata.artifact_lineage(name(r, "artifacts"),
                                            r.int_arg("maxHops", 0), r.arg("filter")))

    add("POST", PARENT + r"/tensorboards", lambda r: tensorboards.create(parent_of(r), r.json()))
    add("GET", PARENT + r"/tensorboards", lambda r: tensorboards.list(parent_of(r), query_of(r)))
    add("GET", TENSORBOARD, lambda r: tensorboards.get(parent_of(r), r.params["tensorboard"]))
    add("DELETE", TENSORBOARD,
        lambda r: tensorboards.delete(parent_of(r), r.params["tensorboard"]))

    experiment = TENSORBOARD + r"/experiments/(?P<experiment>[^/:]+)"
    run = experiment + r"/runs/(?P<run>[^/:]+)"
    series = run + r"/timeSeries/(?P<series>[^/:]+)"
    for kind, collection, one in (("experiments", TENSORBOARD, experiment),
                                  ("runs", experiment, run), ("timeSeries", run, series)):
        id_arg = TensorboardChildren.KINDS[kind][1]
        add("POST", collection + f"/{kind}",
            lambda r, k=kind, a=id_arg: children._public(children.create(
                _path(r).rsplit("/", 1)[0], k, r.json(), r.arg(a))))
        add("GET", collection + f"/{kind}",
            lambda r, k=kind: children.list(_path(r).rsplit("/", 1)[0], k, query_of(r)))
        add("GET", one, lambda r, k=kind: children._public(children.get(_path(r), k)))
        add("DELETE", one, lambda r, k=kind: children.delete(_path(r), k))

    add("POST", run + r":write", lambda r: children.write(_path(r), r.json()))
    add("GET", series + r":read", lambda r: children.read(_path(r), query_of(r)))
    add("POST", series + r":exportTensorboardTimeSeries",
        lambda r: children.export(_path(r), r.json()))
    add("GET", TENSORBOARD + r":batchRead",
        lambda r: children.batch_read(_path(r), r.query.get("timeSeries", [])))


def _path(r: Request) -> str:
    """The resource name in the request path (without /v1/ or /v1beta1/)."""
    return r.path.split("/", 2)[2].split(":", 1)[0]
