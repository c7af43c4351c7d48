"""The local AutoML: managed datasets, AutoML tabular training on a FLAML search engine,
evaluations and serving; BigQuery ML's AUTOML_* model types use the same engine.

Rooms: `service` (the /datasets routes), `datasets` (Dataset resources and their data),
`pipelines` (AutoML TrainingPipelines, handed over by the training pipelines routes),
`engine` (data rules, splits, the search), `features` (column transformations),
`objectives` (Vertex objectives -> search metrics), `model` (the saved model),
`evaluation` (ModelEvaluations in Vertex's schema), `bqml`
(the BigQuery ML trainer).
"""


def start_training_pipeline(store, registry, parent: str, body: dict) -> dict:
    from labkit.vertex.automl.pipelines import start_training_pipeline as start

    return start(store, registry, parent, body)
