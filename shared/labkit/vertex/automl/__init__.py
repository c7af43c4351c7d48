"""The local Vertex AI AutoML: managed datasets and AutoML tabular training pipelines on
the local AutoML search (labkit.automl, which BigQuery ML's AUTOML_* model types use too),
with their evaluations; the models are served by the prebuilt scikit-learn engine.

Rooms: `service` (the /datasets routes), `datasets` (Dataset resources and their data),
`pipelines` (AutoML TrainingPipelines, handed over by the training pipelines routes; it
turns labkit.automl's errors into VertexError), `evaluation` (ModelEvaluations in
Vertex's schema).
"""


def start_training_pipeline(store, registry, parent: str, body: dict, bigquery) -> dict:
    from labkit.vertex.automl.pipelines import start_training_pipeline as start

    return start(store, registry, parent, body, bigquery)
