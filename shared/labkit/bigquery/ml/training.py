"""CREATE MODEL: from the training query's rows to a TrainedModel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from labkit.bigquery.ml import metrics, tuning
from labkit.bigquery.ml.errors import MLError
from labkit.bigquery.ml.features import FeatureEncoder
from labkit.bigquery.ml.model import TrainedModel, _key
from labkit.bigquery.ml.options import CLASSIFIERS, REGRESSORS
from labkit.bigquery.ml.split import eval_mask
from labkit.bigquery.ml.statements import CreateModel
from labkit.bigquery.ml.transform import Transform

STANDARDIZED = {"linear_reg", "logistic_reg", "dnn_classifier", "dnn_regressor"}


def training_frame(stmt: CreateModel, run_query) -> tuple[pd.DataFrame, pa.Schema,
                                                          Transform | None]:
    if not stmt.query:
        raise MLError("CREATE MODEL needs a training query: AS SELECT ...")
    if stmt.transform is None:
        table = run_query(stmt.query)
        return table.to_pandas(), table.schema, None
    transform = Transform(stmt.transform)
    table = run_query(transform.select_sql(stmt.query))
    df = table.to_pandas()
    transform.fit(df)
    out = transform.apply(df)
    return out, pa.Table.from_pandas(out.head(0), preserve_index=False).schema, transform


def train(stmt: CreateModel, options: dict, run_query) -> TrainedModel:
    df, schema, transform = training_frame(stmt, run_query)
    if len(df) == 0:
        raise MLError("Training data is empty: the query returned no rows")
    plan = tuning.plan(options)
    if plan is not None:
        return _train_tuned(plan, df, schema, transform)
    model_type = options["model_type"]
    model = TrainedModel(model_type, options, transform)
    if model_type in CLASSIFIERS | REGRESSORS:
        _train_supervised(model, df, schema)
    elif model_type == "kmeans":
        _train_kmeans(model, df)
    elif model_type == "arima_plus":
        from labkit.bigquery.ml.trainers.arima import ArimaTrainer

        model.trainer = ArimaTrainer()
        model.history = model.trainer.fit(df, options)
        model.split_sizes = (len(df), 0)
    else:
        _train_factorization(model, df)
    return model


def _class_weights(model: TrainedModel, y: np.ndarray) -> np.ndarray | None:
    options, k = model.options, len(model.classes)
    if options.get("auto_class_weights"):
        counts = np.bincount(y, minlength=k).astype(float)
        per_class = len(y) / (k * np.maximum(counts, 1))
        return per_class[y]
    if options.get("class_weights"):
        given = {_key(label): float(weight) for label, weight in options["class_weights"]}
        per_class = np.array([given.get(_key(c), 1.0) for c in model.classes])
        return per_class[y]
    return None


def _train_supervised(model: TrainedModel, df: pd.DataFrame, schema: pa.Schema,
                      held: np.ndarray | None = None) -> None:
    """`held`: the evaluation rows when the caller split the data (tuning trials)."""
    options = model.options
    label = (options.get("input_label_cols") or ["label"])[0]
    if label not in df.columns:
        raise MLError(f"Unable to identify the label column: no column named {label} in the "
                      "training data. Name the label column `label` or set input_label_cols.")
    df = df[df[label].notna()].reset_index(drop=True)
    if len(df) == 0:
        raise MLError(f"Every row of the training data has a NULL label ({label})")
    model.label = label
    model.label_type = schema.field(label).type
    held = eval_mask(df, options) if held is None else held
    drop = [label]
    if options.get("data_split_method") in ("CUSTOM", "SEQ"):
        drop.append(options["data_split_col"])
    features = df.drop(columns=drop)
    if features.shape[1] == 0:
        raise MLError("The training data has no feature columns besides the label")
    if model.classifier:
        uniques = pd.unique(df[label])
        model.classes = sorted({_key(u) for u in uniques}, key=lambda v: (str(type(v)), v))
        if len(model.classes) < 2:
            raise MLError(f"Classification models need at least two distinct values of the "
                          f"label column {label}; found {len(model.classes)}")
        if len(model.classes) > 50 and model.model_type == "logistic_reg":
            raise MLError("logistic_reg supports at most 50 unique labels")
        index = {c: i for i, c in enumerate(model.classes)}
        lookup = np.array([index[_key(u)] for u in uniques])
        y = lookup[pd.Index(uniques).get_indexer(df[label])]
    else:
        try:
            y = pd.to_numeric(df[label]).to_numpy(float)
        except (TypeError, ValueError):
            raise MLError(f"The label column {label} of a regression model must be numeric")\
                from None
    train_x = features[~held]
    model.encoder = FeatureEncoder(model.model_type in STANDARDIZED).fit(train_x)
    encoded = model.encoder.encode(features, compressed=model.model_type in (
        "linear_reg", "logistic_reg"))
    X, X_eval = encoded[~held], (encoded[held] if held.any() else None)
    y_train, y_eval = y[~held], (y[held] if held.any() else None)
    weights = _class_weights(model, y_train) if model.classifier else None
    from labkit.bigquery.ml.trainers import supervised_trainer

    model.trainer = supervised_trainer(model.model_type)
    try:
        model.history = model.trainer.fit(X, y_train, weights, X_eval, y_eval, options,
                                          len(model.classes) if model.classifier else None)
    except ValueError as exc:     # a trainer's own check of its options
        raise MLError(str(exc)) from None
    model.split_sizes = (len(train_x), int(held.sum()))
    eval_rows = X_eval if X_eval is not None else X
    model.eval_y = y_eval if y_eval is not None else y_train
    model.eval_out = model.trainer.predict(eval_rows)
    model.eval_metrics = (metrics.classification(model.eval_y, model.eval_out)
                          if model.classifier else metrics.regression(model.eval_y,
                                                                      model.eval_out))
    model.baseline = np.asarray(X.mean(axis=0)).ravel()
    if options.get("enable_global_explain"):
        from labkit.bigquery.ml.explain import attributions

        sample = train_x.sample(min(200, len(train_x)), random_state=0)
        attr = attributions(model, sample)[0]
        mean_abs = np.abs(attr).mean(axis=0)
        model.global_attributions = sorted(
            zip(model.encoder.names, mean_abs.tolist(), strict=True), key=lambda kv: -kv[1])


def _train_kmeans(model: TrainedModel, df: pd.DataFrame) -> None:
    from labkit.bigquery.ml.trainers.kmeans import KMeansTrainer

    features = df.drop(columns=[c for c in [model.options.get("kmeans_init_col")] if c])
    model.encoder = FeatureEncoder(bool(model.options.get("standardize_features", True)))
    model.encoder.fit(features)
    X = model.encode(features)
    model.trainer = KMeansTrainer()
    model.history = model.trainer.fit(X, model.options)
    model.split_sizes = (len(X), 0)
    model.eval_metrics = metrics.clustering(X, model.trainer.predict(X))


def _train_factorization(model: TrainedModel, df: pd.DataFrame) -> None:
    from labkit.bigquery.ml.trainers.factorization import ALSTrainer

    options = model.options
    cols = [options.get("user_col", "user"), options.get("item_col", "item"),
            options.get("rating_col", "rating")]
    for col in cols:
        if col not in df.columns:
            raise MLError(f"Column {col} is not in the training data; set user_col, item_col "
                          "and rating_col for MATRIX_FACTORIZATION")
    df = df.dropna(subset=cols).reset_index(drop=True)
    held = eval_mask(df, options)
    train_df, eval_df = df[~held], df[held]
    model.label = cols[2]
    model.trainer = ALSTrainer()
    eval_data = ((eval_df[cols[0]].tolist(), eval_df[cols[1]].tolist(),
                  eval_df[cols[2]].to_numpy(float)) if held.any() else None)
    model.history = model.trainer.fit(train_df[cols[0]].tolist(), train_df[cols[1]].tolist(),
                                      train_df[cols[2]].to_numpy(float), eval_data, options)
    part = eval_df if held.any() else train_df
    model.eval_y = part[cols[2]].to_numpy(float)
    model.eval_out = model.trainer.predict(part[cols[0]].tolist(), part[cols[1]].tolist())
    model.eval_metrics = metrics.regression(model.eval_y, model.eval_out)
    model.split_sizes = (len(train_df), int(held.sum()))


def _train_tuned(plan: tuning.Plan, df: pd.DataFrame, schema: pa.Schema,
                 transform: Transform | None) -> TrainedModel:
    """NUM_TRIALS trainings (labkit.bigquery.ml.tuning): supervised trials are scored on
    the evaluation rows; ML.EVALUATE reports the test rows (DATA_SPLIT_TEST_FRACTION), or
    the evaluation rows when there are none. k-means trials are scored on all rows."""
    options = plan.fixed
    model_type = options["model_type"]
    test = np.zeros(len(df), dtype=bool)
    held = None
    if model_type != "kmeans":
        label = (options.get("input_label_cols") or ["label"])[0]
        if label in df.columns:
            df = df[df[label].notna()].reset_index(drop=True)
        method = options.get("data_split_method") or "AUTO_SPLIT"
        test_fraction = float(options.get("data_split_test_fraction") or 0.0)
        eval_fraction = float(options.get("data_split_eval_fraction") or 0.2)
        if not 0 <= test_fraction < 1 or eval_fraction + test_fraction >= 1:
            raise MLError("DATA_SPLIT_EVAL_FRACTION plus DATA_SPLIT_TEST_FRACTION must be "
                          "below 1.0")
        rng = np.random.default_rng(42)
        if method in ("AUTO_SPLIT", "RANDOM"):
            order = rng.permutation(len(df))
            n_test, n_eval = int(round(len(df) * test_fraction)), \
                int(round(len(df) * eval_fraction))
            test[order[:n_test]] = True
            held_all = np.zeros(len(df), dtype=bool)
            held_all[order[n_test:n_test + n_eval]] = True
        else:
            held_all = eval_mask(df, options)
        if not held_all.any():
            raise MLError("Hyperparameter tuning needs evaluation data: the data split left "
                          "no evaluation rows (check DATA_SPLIT_METHOD)")
        held = held_all[~test]
    train_rows = df[~test].reset_index(drop=True)
    test_rows = df[test].reset_index(drop=True)

    def train_one(trial_options: dict) -> TrainedModel:
        model = TrainedModel(model_type, trial_options, transform)
        try:
            if model_type == "kmeans":
                _train_kmeans(model, train_rows)
            else:
                _train_supervised(model, train_rows, schema, held)
        except (ValueError, ArithmeticError) as exc:   # the library refused the values
            raise MLError(f"{type(exc).__name__}: {exc}") from None
        return model

    def score(model: TrainedModel) -> float | None:
        value = model.eval_metrics.get(plan.objective)
        return None if value is None else float(value)

    trials = tuning.run_trials(plan, train_one, score)
    for trial in trials:
        model = trial["model"]
        if model is None:
            continue
        model.trial_id, model.trials = trial["trial_id"], trials
        trial["eval_metrics"] = dict(model.eval_metrics)     # on the evaluation rows
        if len(test_rows):
            features = test_rows.drop(columns=[c for c in (model.label,) if c])
            model.eval_y = model.label_values(test_rows)
            model.eval_out = model.output(features[model.encoder.names])
            model.eval_metrics = (metrics.classification(model.eval_y, model.eval_out)
                                  if model.classifier else
                                  metrics.regression(model.eval_y, model.eval_out))
    for trial in trials:
        if trial["model"] is not None:
            trial["model"].tuning = {"objective": plan.objective, "algorithm": plan.algorithm,
                                     "params": [p.id for p in plan.params]}
    return next(t for t in trials if t["is_optimal"])["model"]
