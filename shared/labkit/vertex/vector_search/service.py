"""Vector Search REST routes: indexes, index endpoints, and the match service.

The Vertex SDK (api_transport="rest") creates and updates indexes through IndexService,
deploys them through IndexEndpointService, and queries a public endpoint through
MatchService (v1beta1 paths, which serve_v1beta1 in vertex/service.py answers with these
/v1/ routes).
"""

from __future__ import annotations

from labkit.services.http import Router
from labkit.vertex.routes import PARENT, parent_of, query_of, refuse
from labkit.vertex.vector_search.index_endpoints import IndexEndpoints
from labkit.vertex.vector_search.indexes import Indexes

INDEX = PARENT + r"/indexes/(?P<index>[^/:]+)"
ENDPOINT = PARENT + r"/indexEndpoints/(?P<endpoint>[^/:]+)"


def register(router: Router, services) -> None:
    indexes = Indexes(services.vertex_store, services.objects)
    endpoints = IndexEndpoints(services.vertex_store, indexes)
    add = router.add

    add("POST", PARENT + r"/indexes", lambda r: indexes.create(parent_of(r), r.json()))
    add("GET", PARENT + r"/indexes", lambda r: indexes.list(parent_of(r), query_of(r)))
    add("GET", INDEX, lambda r: indexes.get(parent_of(r), r.params["index"]))
    add("PATCH", INDEX, lambda r: indexes.patch(parent_of(r), r.params["index"], r.json(),
                                                r.arg("updateMask")))
    add("DELETE", INDEX, lambda r: indexes.delete(parent_of(r), r.params["index"]))
    add("POST", INDEX + r":upsertDatapoints",
        lambda r: indexes.upsert(parent_of(r), r.params["index"], r.json()))
    add("POST", INDEX + r":removeDatapoints",
        lambda r: indexes.remove(parent_of(r), r.params["index"], r.json()))
    add("POST", INDEX + r":import", refuse("Importing embeddings from a connector "
                                           "(import_embeddings)"))

    add("POST", PARENT + r"/indexEndpoints",
        lambda r: endpoints.create(parent_of(r), r.json()))
    add("GET", PARENT + r"/indexEndpoints",
        lambda r: endpoints.list(parent_of(r), query_of(r)))
    add("GET", ENDPOINT, lambda r: endpoints.get(parent_of(r), r.params["endpoint"]))
    add("PATCH", ENDPOINT, lambda r: endpoints.patch(parent_of(r), r.params["endpoint"],
                                                     r.json(), r.arg("updateMask")))
    add("DELETE", ENDPOINT, lambda r: endpoints.delete(parent_of(r), r.params["endpoint"]))
    add("POST", ENDPOINT + r":deployIndex",
        lambda r: endpoints.deploy(parent_of(r), r.params["endpoint"], r.json()))
    add("POST", ENDPOINT + r":undeployIndex",
        lambda r: endpoints.undeploy(parent_of(r), r.params["endpoint"], r.json()))
    add("POST", ENDPOINT + r":mutateDeployedIndex",
        refuse("Changing a deployed index's resources (mutate_deployed_index)"))
    add("POST", ENDPOINT + r":findNeighbors",
        lambda r: endpoints.find_neighbors(parent_of(r), r.params["endpoint"], r.json()))
    add("POST", ENDPOINT + r":readIndexDatapoints",
        lambda r: endpoints.read_datapoints(parent_of(r), r.params["endpoint"], r.json()))
