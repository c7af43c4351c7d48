"""A trained BigQuery ML model: everything ML.* functions need, pickled as one artifact."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.features import FeatureEncoder
from labkit.bigquery.ml.options import CLASSIFIERS, REGRESSORS
from labkit.bigquery.ml.transform import Transform


@dataclass
class TrainedModel:
    model_type: str
    options: dict
    transform: Transform | None = None
    label: str | None = None
    label_type: pa.DataType | None = None
    classes: list | None = None
    encoder: FeatureEncoder | None = None
    trainer: object = None
    history: list[dict] = field(default_factory=list)
    eval_y: np.ndarray | None = None          # labels of the evaluation rows
    eval_out: np.ndarray | None = None        # model output on them (values or probabilities)
    eval_metrics: dict = field(default_factory=dict)
    global_attributions: list | None = None
    baseline: np.ndarray | None = None        # mean encoded training row, for explanations
    split_sizes: tuple[int, int] = (0, 0)
    trials: list[dict] | None = None          # hyperparameter tuning: every trial's record
    trial_id: int | None = None               # this model's trial
    tuning: dict | None = None                # objective, algorithm, tuned options

    def for_trial(self, trial_id) -> TrainedModel:
        """The model of one hyperparameter tuning trial (ML.* functions' trial_id)."""
        if not self.trials:
            raise MLError("trial_id can only be set for models trained with hyperparameter "
                          "tuning (NUM_TRIALS)")
        for trial in self.trials:
            if trial["trial_id"] == trial_id:
                if trial["model"] is None:
                    raise MLError(f"Trial {trial_id} did not succeed ({trial['status']}): "
                                  f"{trial['error']}")
                return trial["model"]
        raise MLError(f"Invalid trial_id {trial_id}: the model has trials 1 to "
                      f"{len(self.trials)}")

    @property
    def classifier(self) -> bool:
        return self.model_type in CLASSIFIERS

    @property
    def supervised(self) -> bool:
        return self.model_type in CLASSIFIERS | REGRESSORS

    @property
    def predicted_name(self) -> str:
        return f"predicted_{self.label}"

    def encode(self, features: pd.DataFrame):
        """The model matrix; sparse for the linear models, whose solvers prefer it."""
        return self.encoder.encode(features, compressed=self.model_type in (
            "linear_reg", "logistic_reg"))

    def output(self, features: pd.DataFrame) -> np.ndarray:
        """Regression values, class probabilities, or k-means distances."""
        return self.trainer.predict(self.encode(features))

    def inputs(self, run_query, base_sql: str) -> tuple[pa.Table, pd.DataFrame]:
        """Run the ML function's input query: (input columns to pass through, features)."""
        if self.transform is None:
            table = run_query(base_sql)
            return table, table.to_pandas()
        skip = {self.label} if self.label else set()
        table = run_query(self.transform.select_sql(base_sql, skip))
        features = self.transform.apply(table.to_pandas(), skip)
        keep = [c for c in table.column_names if not c.startswith("__tf")]
        return table.select(keep), features

    def label_values(self, frame: pd.DataFrame) -> np.ndarray:
        """The label column of `frame` as class indices (classifiers) or floats."""
        if self.label not in frame.columns:
            raise MLError(f"The label column {self.label} is not in the input data, which "
                          "evaluation needs")
        values = frame[self.label]
        if values.isna().any():
            frame = frame[values.notna()]
            values = frame[self.label]
        if not self.classifier:
            return values.to_numpy(float)
        index = {_key(c): i for i, c in enumerate(self.classes)}
        try:
            return np.array([index[_key(v)] for v in values])
        except KeyError as exc:
            raise MLError(f"Label value {exc.args[0]} did not appear in the training data")\
                from None


def _key(value):
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
