"""Model monitoring, explanations and request-response logging on the local Vertex AI.

Rooms: `stats` (feature distributions and distances), `training_data` (the skew baseline),
`request_log` (what endpoints served, into BigQuery and into the monitoring record),
`jobs` (ModelDeploymentMonitoringJob: state, analysis, schedule, alerts), `explain`
(sampled Shapley and integrated gradients), `hooks` (what the endpoint routes call),
`service` (REST routes).
"""
