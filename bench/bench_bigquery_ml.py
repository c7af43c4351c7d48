"""BigQuery ML: CREATE MODEL logistic_reg on census_adult_income through the real client,
against the same scikit-learn fit (one-hot + standardization + LogisticRegression with the
same iteration budget) called directly on the same rows in the same run (smoke mode:
LIMIT 2000, one fit each, no warm-up)."""

from __future__ import annotations

import statistics
import time
import warnings

REPEATS = 5
SMOKE_ROWS = 2000
SOURCE = """SELECT * EXCEPT(functional_weight)
FROM `bigquery-public-data.ml_datasets.census_adult_income`"""
TRAIN_SQL = """CREATE OR REPLACE MODEL `{dataset}.census_lr`
OPTIONS (model_type = 'logistic_reg', input_label_cols = ['income_bracket']) AS
{source}"""


def _direct_fit(frame) -> float:
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    label = frame.pop("income_bracket")
    strings = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype)
               .startswith("str")]
    numbers = [c for c in frame.columns if c not in strings]
    held = np.zeros(len(frame), dtype=bool)    # the same 20% evaluation split (AUTO_SPLIT)
    held[np.random.default_rng(42).choice(len(frame), int(round(len(frame) * 0.2)),
                                          replace=False)] = True
    pipeline = make_pipeline(
        ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), strings),
                           ("num", StandardScaler(), numbers)]),
        LogisticRegression(C=np.inf, max_iter=20))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(frame[~held], label[~held])
    return time.perf_counter() - start


def run(smoke: bool = False) -> list[dict]:
    from google.cloud import bigquery

    import labkit

    env = labkit.start()
    client = bigquery.Client()
    dataset = f"{env.project}.bench_bqml"
    client.create_dataset(dataset, exists_ok=True)
    source = SOURCE + (f"\nLIMIT {SMOKE_ROWS}" if smoke else "")
    train_sql = TRAIN_SQL.format(dataset=dataset, source=source)
    frame = client.query(source).to_dataframe()
    through, direct = [], []
    try:
        if not smoke:
            client.query(train_sql).result()   # warm-up: imports
        for _ in range(1 if smoke else REPEATS):
            start = time.perf_counter()
            client.query(train_sql).result()
            through.append(time.perf_counter() - start)
            direct.append(_direct_fit(frame.copy()))
    finally:
        client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)
    return [{"name": f"CREATE MODEL logistic_reg, census_adult_income ({len(frame)} rows)",
             "value": statistics.median(through), "unit": "s",
             "baseline": statistics.median(direct), "target": "ratio < 1.5x"}]
