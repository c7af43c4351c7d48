"""The local Vertex AI Pipelines: `service` (REST routes), `jobs` (pipelineJobs and their
threads), `runner` (walks a compiled PipelineSpec task by task), `spec` (validation,
conditions), `launch` (inside a task's process), `google_ops` (Google Cloud Pipeline
Components against the local services), `schedules` and `cron`."""
