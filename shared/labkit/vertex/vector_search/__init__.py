"""Vertex AI Vector Search: indexes (indexes.py), index endpoints and the match service
(index_endpoints.py), datapoints on the wire and in input files (datapoints.py), routes
(service.py). The search itself is labkit.vectors (ScaNN tree-AH or brute force)."""
