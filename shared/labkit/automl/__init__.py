"""The local AutoML search, shared by Vertex AI AutoML tabular training
(labkit.vertex.automl) and BigQuery ML's AUTOML_CLASSIFIER / AUTOML_REGRESSOR
(labkit.bigquery.ml.trainers.automl).

Plain Python on pandas, scikit-learn and FLAML: no HTTP, no Vertex resources, no BigQuery
types. It imports neither labkit.vertex nor labkit.bigquery; it raises its own errors
(`errors`), which each caller turns into its own error shape at its boundary.

Rooms: `engine` (data rules, the time budget, the FLAML search), `splits` (train /
validate / test roles of rows), `features` (column transformations and type sniffing),
`objectives` (optimization objectives -> search metrics), `model` (the trained model
artifact, pickled with joblib), `evaluation` (test-split metrics and feature importance).
"""

from labkit.automl.errors import AutoMLError, InvalidInput, NoModelFound

__all__ = ["AutoMLError", "InvalidInput", "NoModelFound"]
