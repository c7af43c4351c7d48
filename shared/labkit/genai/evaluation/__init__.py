"""The Gen AI evaluation service (Vertex AI's `:evaluateInstances`, what
`vertexai.evaluation.EvalTask` calls once per row and metric): `computation` computes the
reference-based metrics for real (exact match, BLEU, ROUGE, tool-call checks), `judge`
has the local Gemma rate a response under the metric prompt template the request carries,
and `routes` is the wire."""
