"""ML.DISTANCE(vector1, vector2 [, 'EUCLIDEAN' | 'MANHATTAN' | 'COSINE']) as DuckDB list
arithmetic (docs: https://cloud.google.com/bigquery/docs/reference/standard-sql/
bigqueryml-syntax-distance: dense ARRAY<FLOAT64> or ARRAY<INT64> vectors of equal length,
EUCLIDEAN by default, NULL when either vector is NULL; the sparse
ARRAY<STRUCT<STRING, FLOAT64>> form is refused here). VECTOR_SEARCH's distances are in
labkit.bigquery.ml.vector."""

from __future__ import annotations

from sqlglot import exp

from labkit.bigquery.errors import invalid_query, unsupported

TYPES = ("EUCLIDEAN", "MANHATTAN", "COSINE")


def is_ml_distance(node: exp.Expression) -> bool:
    return isinstance(node, exp.Dot) and isinstance(node.this, (exp.Identifier, exp.Column)) \
        and node.this.name.upper() == "ML" and isinstance(node.expression, exp.Anonymous) \
        and node.expression.name.upper() == "DISTANCE"


def ml_distance(node: exp.Dot) -> exp.Expression:
    args = [a.copy() for a in node.expression.expressions]
    if len(args) not in (2, 3):
        raise invalid_query("No matching signature for function ML.DISTANCE: it takes two "
                            "vectors and an optional distance type")
    kind = "EUCLIDEAN"
    if len(args) == 3:
        if not (isinstance(args[2], exp.Literal) and args[2].is_string):
            raise invalid_query("The distance type of ML.DISTANCE must be a STRING literal")
        kind = args[2].this.upper()
        if kind not in TYPES:
            raise invalid_query(f"Invalid distance type '{args[2].this}' for ML.DISTANCE: use "
                                "EUCLIDEAN, MANHATTAN or COSINE")
    a, b = (_doubles(x) for x in args[:2])
    if kind == "EUCLIDEAN":
        value = _call("list_distance", a, b)
    elif kind == "COSINE":
        value = _call("list_cosine_distance", a, b)
    else:  # the sum of absolute differences; DuckDB's lambda syntax has no sqlglot node
        value = _call("list_sum", _call("list_transform", _call("list_zip", a, b),
                                        exp.Var(this="lambda p: abs(p[1] - p[2])")))
    mismatch = exp.NEQ(this=_call("len", a.copy()), expression=_call("len", b.copy()))
    error = _call("error", exp.Literal.string(
        "Input vectors of ML.DISTANCE must have the same length"))
    return exp.Paren(this=exp.Case().when(mismatch, error).else_(value))


def _doubles(vector: exp.Expression) -> exp.Expression:
    if isinstance(vector, exp.Array) and any(isinstance(e, (exp.Struct, exp.Tuple))
                                            for e in vector.expressions):
        raise unsupported("ML.DISTANCE over sparse vectors (ARRAY<STRUCT<STRING, FLOAT64>>)")
    return exp.Cast(this=vector, to=exp.DataType.build("DOUBLE[]"))


def _call(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))
