"""The local Vertex ML Metadata: `engine` (artifacts, executions, contexts, events, lineage),
`filters` (the list filter language), `tensorboards` (what Experiments needs), `service`
(REST routes)."""
