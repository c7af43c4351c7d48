"""BigQuery ML for the local BigQuery: CREATE MODEL trains real models (scikit-learn,
XGBoost, Keras, numpy/scipy), ML.* table functions answer with BigQuery's documented
output columns, and models persist in the workspace.

Rooms: statements/sqlscan (the ML syntax), options (model types and options), transform
and features (preprocessing), split, trainers/ (one per model family), training (CREATE
MODEL), functions/ (ML.*), metrics, explain, model (the trained artifact), store (disk),
resource (REST Model resource), engine (the entry point)."""

from labkit.bigquery.ml.engine import MLEngine, MLResult
from labkit.bigquery.ml.errors import MLError

__all__ = ["MLEngine", "MLError", "MLResult"]
