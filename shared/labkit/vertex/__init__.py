"""The local Vertex AI: the REST v1 control plane and the engines behind it.

Rooms: `service` (routes, HTTP <-> calls), `store` (resources persisted in the workspace),
`operations` (long-running operations as Vertex returns them), `models` (registry),
`endpoints` (deployments, traffic split, online prediction), `machines` (machine types and
accelerators Vertex accepts), `batch` (batch prediction jobs), `serving` (model servers
that load an artifact by Vertex's prebuilt-container conventions), `errors`.
"""
