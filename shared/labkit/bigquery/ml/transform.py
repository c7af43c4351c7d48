"""The TRANSFORM clause: its expressions are computed by the SQL engine, its ML.*
preprocessing functions are fitted here on the training data and replayed with the same
fitted state at prediction time, as BigQuery does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from labkit.bigquery.ml.errors import MLError, not_local
from labkit.bigquery.ml.sqlscan import close_paren, literal, mask, split_alias, split_top

_ML_FN = re.compile(r"^\s*ML\s*\.\s*(?P<fn>\w+)\s*\(", re.I)
_STAR = re.compile(r"^\s*\*\s*(EXCEPT\s*\((?P<except>.*)\))?\s*$", re.I | re.S)
ANALYTIC = {"STANDARD_SCALER", "MIN_MAX_SCALER", "QUANTILE_BUCKETIZE", "IMPUTER",
            "MAX_ABS_SCALER", "ROBUST_SCALER"}
SCALAR = {"BUCKETIZE", "FEATURE_CROSS", "POLYNOMIAL_EXPAND", "HASH_BUCKETIZE"}


@dataclass
class Item:
    name: str
    kind: str                       # "plain", "star" or an ML function name
    exprs: list[str] = field(default_factory=list)
    arg_names: list[str] = field(default_factory=list)
    params: list = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    state: dict = field(default_factory=dict)


def _struct_args(text: str) -> tuple[list[str], list[str]]:
    match = re.match(r"^\s*STRUCT\s*\((?P<body>.*)\)\s*$", text, re.I | re.S)
    if not match:
        expr, alias = split_alias(text)
        return [expr], [alias or expr.strip("`")]
    exprs, names = [], []
    for part in split_top(match.group("body")):
        expr, alias = split_alias(part)
        exprs.append(expr)
        names.append(alias or expr.strip().strip("`").split(".")[-1])
    return exprs, names


def parse_item(text: str) -> Item:
    star = _STAR.match(mask(text))
    if star:
        excluded = []
        if star.group("except"):
            excluded = [p.strip("`") for p in split_top(text[star.start("except"):
                                                               star.end("except")])]
        return Item("*", "star", excluded=excluded)
    expr, alias = split_alias(text)
    fn = _ML_FN.match(expr)
    if not fn:
        name = alias or expr.strip().strip("`").split(".")[-1]
        if not alias and not re.fullmatch(r"[\w.`]+", expr.strip()):
            raise MLError(f"TRANSFORM expression needs an alias: {expr}")
        return Item(name, "plain", [expr])
    name = fn.group("fn").upper()
    if name not in ANALYTIC | SCALAR:
        raise not_local(f"TRANSFORM function ML.{name}")
    masked = mask(expr)
    open_at = masked.index("(", fn.start())
    close = close_paren(masked, open_at)
    tail = masked[close + 1:].strip()
    if tail and not re.fullmatch(r"OVER\s*\(\s*\)", tail, re.I):
        raise not_local(f"ML.{name} with a windowed OVER clause")
    if alias is None:
        raise MLError(f"TRANSFORM expression needs an alias: {expr}")
    args = split_top(expr[open_at + 1:close])
    exprs, names = _struct_args(args[0])
    return Item(alias, name, exprs, names, [literal(a) for a in args[1:]])


class Transform:
    """Parsed TRANSFORM list; `fit` learns the analytic functions' state."""

    def __init__(self, texts: list[str]):
        self.items = [parse_item(t) for t in texts]
        self.source_columns: list[str] = []

    def select_sql(self, query: str, skip: set[str] = frozenset()) -> str:
        """SQL that returns the source columns plus every expression as __tf<i>_<j>."""
        cols = ["__src.*"]
        for i, item in enumerate(self.items):
            if item.name in skip:
                continue
            cols += [f"({e}) AS __tf{i}_{j}" for j, e in enumerate(item.exprs)]
        return f"SELECT {', '.join(cols)} FROM ({query}) AS __src"

    def output_names(self, skip: set[str] = frozenset()) -> list[str]:
        names = []
        for item in self.items:
            if item.name in skip:
                continue
            if item.kind == "star":
                names += [c for c in self.source_columns
                          if c not in item.excluded and c not in skip]
            else:
                names += list(item.state.get("outputs", [item.name]))
        return names

    def fit(self, df: pd.DataFrame) -> None:
        self.source_columns = [c for c in df.columns if not c.startswith("__tf")]
        for i, item in enumerate(self.items):
            if item.kind == "star":
                continue
            cols = [df[f"__tf{i}_{j}"] for j in range(len(item.exprs))]
            item.state = _fit(item, cols)

    def apply(self, df: pd.DataFrame, skip: set[str] = frozenset()) -> pd.DataFrame:
        out: dict[str, pd.Series] = {}
        for i, item in enumerate(self.items):
            if item.name in skip:
                continue
            if item.kind == "star":
                for c in self.source_columns:
                    if c not in item.excluded and c not in skip:
                        if c not in df.columns:
                            raise MLError(f"Column {c} is missing from the input, but the "
                                          "model's TRANSFORM needs it")
                        out[c] = df[c]
                continue
            cols = [df[f"__tf{i}_{j}"] for j in range(len(item.exprs))]
            out.update(_apply(item, cols))
        return pd.DataFrame(out, index=df.index)


def _num(s: pd.Series) -> pd.Series:
    if s.dtype == bool or str(s.dtype) == "boolean":
        return s.astype("float64")
    try:
        return pd.to_numeric(s).astype("float64")
    except (TypeError, ValueError) as exc:
        raise MLError(f"Expected a numeric argument but got {s.dtype}: {exc}") from None


def _fit(item: Item, cols: list[pd.Series]) -> dict:
    kind, x = item.kind, cols[0]
    if kind == "STANDARD_SCALER":
        v = _num(x)
        return {"mean": float(v.mean()), "std": float(v.std(ddof=1) or 0.0)}
    if kind == "MIN_MAX_SCALER":
        v = _num(x)
        return {"min": float(v.min()), "max": float(v.max())}
    if kind == "MAX_ABS_SCALER":
        return {"max_abs": float(_num(x).abs().max())}
    if kind == "ROBUST_SCALER":
        v = _num(x)
        return {"median": float(v.median()), "iqr": float(v.quantile(0.75) - v.quantile(0.25))}
    if kind == "QUANTILE_BUCKETIZE":
        buckets = int(item.params[0]) if item.params else 4
        qs = np.quantile(_num(x).dropna(), np.linspace(0, 1, buckets + 1)[1:-1])
        return {"splits": sorted(set(float(q) for q in qs))}
    if kind == "IMPUTER":
        strategy = str(item.params[0]).lower() if item.params else "mean"
        non_null = x.dropna()
        if strategy == "mean":
            value = float(_num(non_null).mean())
        elif strategy == "median":
            value = float(_num(non_null).median())
        elif strategy == "most_frequent":
            value = non_null.mode().iloc[0] if len(non_null) else None
        else:
            raise MLError(f"ML.IMPUTER strategy must be mean, median or most_frequent: "
                          f"{strategy}")
        return {"value": value.item() if hasattr(value, "item") else value}
    if kind == "FEATURE_CROSS":
        degree = int(item.params[0]) if item.params else 2
        combos = _combos(len(cols), degree, cross=True)
        return {"outputs": [f"{item.name}_" + "_".join(item.arg_names[k] for k in c)
                            for c in combos] if len(combos) > 1 else [item.name],
                "combos": combos}
    if kind == "POLYNOMIAL_EXPAND":
        degree = int(item.params[0]) if item.params else 2
        combos = _combos(len(cols), degree, cross=False)
        return {"outputs": [f"{item.name}_" + "_".join(item.arg_names[k] for k in c)
                            for c in combos], "combos": combos}
    return {}


def _combos(n: int, degree: int, cross: bool) -> list[tuple]:
    from itertools import combinations, combinations_with_replacement

    out = []
    for d in range(2 if cross else 1, degree + 1):
        pick = combinations if cross else combinations_with_replacement
        out += list(pick(range(n), d))
    return out


def _bucket(v: pd.Series, splits: list[float]) -> pd.Series:
    idx = np.searchsorted(np.asarray(splits, dtype=float), v.to_numpy(dtype=float),
                          side="right") + 1
    labels = [None if np.isnan(val) else f"bin_{i}" for val, i in zip(v, idx, strict=True)]
    return pd.Series(labels,
                     index=v.index, dtype=object)


def _apply(item: Item, cols: list[pd.Series]) -> dict[str, pd.Series]:
    kind, x, st = item.kind, cols[0], item.state
    name = item.name
    if kind == "plain":
        return {name: x}
    if kind == "STANDARD_SCALER":
        return {name: (_num(x) - st["mean"]) / st["std"] if st["std"] else _num(x) * 0.0}
    if kind == "MIN_MAX_SCALER":
        span = st["max"] - st["min"]
        return {name: ((_num(x) - st["min"]) / span).clip(0, 1) if span else _num(x) * 0.0}
    if kind == "MAX_ABS_SCALER":
        return {name: _num(x) / st["max_abs"] if st["max_abs"] else _num(x) * 0.0}
    if kind == "ROBUST_SCALER":
        return {name: (_num(x) - st["median"]) / (st["iqr"] or 1.0)}
    if kind == "BUCKETIZE":
        splits = item.params[0] if item.params else []
        return {name: _bucket(_num(x), sorted(float(s) for s in splits))}
    if kind == "QUANTILE_BUCKETIZE":
        return {name: _bucket(_num(x), st["splits"])}
    if kind == "HASH_BUCKETIZE":
        from pandas.util import hash_pandas_object

        buckets = int(item.params[0])
        return {name: hash_pandas_object(x.astype(str), index=False) % buckets}
    if kind == "IMPUTER":
        return {name: x.where(x.notna(), st["value"])}
    if kind == "FEATURE_CROSS":
        out = {}
        for out_name, combo in zip(st["outputs"], st["combos"], strict=False):
            parts = [cols[k].astype(object).where(cols[k].notna(), None) for k in combo]
            joined = parts[0].astype(str)
            for p in parts[1:]:
                joined = joined + "_" + p.astype(str)
            null = pd.concat([p.isna() for p in parts], axis=1).any(axis=1)
            out[out_name] = joined.where(~null, None)
        return out
    if kind == "POLYNOMIAL_EXPAND":
        nums = [_num(c) for c in cols]
        out = {}
        for out_name, combo in zip(st["outputs"], st["combos"], strict=False):
            value = nums[combo[0]].copy()
            for k in combo[1:]:
                value = value * nums[k]
            out[out_name] = value
        return out
    raise not_local(f"TRANSFORM function ML.{kind}")
