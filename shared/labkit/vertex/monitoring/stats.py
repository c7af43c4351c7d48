"""Feature statistics and the distances Vertex AI Model Monitoring uses.

- Categorical features (strings, booleans): L-infinity distance, the largest absolute
  difference between the two category frequency vectors over the union of categories.
- Numerical features: Jensen-Shannon divergence with base-2 logarithms (so it lies in
  [0, 1]) between binned distributions.

Binning (as TFDV's quantiles histograms): the bin edges are the baseline's deciles (unique
values between its minimum and maximum), plus one underflow bin below the baseline's minimum
and one overflow bin above its maximum. Identical samples give 0; a sample entirely outside
the baseline's range lands in the outer bins and gives 1.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

DEFAULT_THRESHOLD = 0.3
QUANTILE_BINS = 10


def is_numeric(values: list) -> bool:
    kinds = {type(v) for v in values} - {type(None)}
    return bool(kinds) and kinds <= {int, float, np.float64, np.int64}


def bin_edges(baseline: np.ndarray) -> np.ndarray:
    """Inner edges: the baseline's deciles; values below the first or above the last edge
    fall into the underflow / overflow bins."""
    quantiles = np.quantile(baseline, np.linspace(0, 1, QUANTILE_BINS + 1))
    return np.unique(quantiles)


def numeric_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in an underflow bin (< edges[0]), the inner bins (np.histogram: the last
    one closed) and an overflow bin (> edges[-1])."""
    values = values[~np.isnan(values)]
    inner = np.histogram(values, bins=edges)[0] if len(edges) > 1 else np.array(
        [np.count_nonzero(values == edges[0])])
    below = np.count_nonzero(values < edges[0])
    above = np.count_nonzero(values > edges[-1])
    return np.concatenate([[below], inner, [above]]).astype(float)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence, base 2, of two count or probability vectors."""
    p = np.asarray(p, float)
    q = np.asarray(q, float)
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return max(0.0, min(1.0, (kl(p) + kl(q)) / 2))


def linf_distance(baseline: Counter, target: Counter) -> float:
    total_b, total_t = sum(baseline.values()), sum(target.values())
    if total_b == 0 or total_t == 0:
        return 0.0
    keys = set(baseline) | set(target)
    return max(abs(baseline[k] / total_b - target[k] / total_t) for k in keys)


def _numbers(values: list) -> np.ndarray:
    array = np.asarray(values, dtype=float)  # None -> nan
    return array[~np.isnan(array)]


def summarize(values: list, numeric: bool | None = None) -> dict:
    """What a baseline needs to be compared with later samples, as TFDV keeps statistics
    rather than data: numbers -> decile edges and the counts in those bins; categories ->
    counts. JSON-ready, so a monitoring run can store its window's summary."""
    if numeric is None:
        numeric = is_numeric(values)
    if numeric:
        b = _numbers(values)
        edges = bin_edges(b) if len(b) else np.array([0.0])
        return {"type": "numeric", "edges": edges.tolist(),
                "counts": numeric_histogram(b, edges).tolist()}
    return {"type": "categorical",
            "counts": dict(Counter(str(v) for v in values if v is not None))}


def compare(baseline: list, target: list, numeric: bool | None = None) -> dict:
    """The distance between two samples of one feature, with the histograms behind it.

    Returns {"type": "numeric"|"categorical", "distance": float, "bins": [...],
    "baseline": [fractions], "target": [fractions]} (bins are edge pairs or categories).
    """
    if numeric is None:
        numeric = is_numeric(baseline) and is_numeric(target)
    return compare_to(summarize(baseline, numeric), target)


def compare_to(summary: dict, target: list) -> dict:
    """compare() with the baseline given by its summarize() summary."""
    if summary["type"] == "numeric" and (is_numeric(target) or not target):
        edges = np.asarray(summary["edges"], float)
        hb = np.asarray(summary["counts"], float)
        ht = numeric_histogram(_numbers(target), edges)
        pairs = list(zip(edges[:-1], edges[1:], strict=True)) or [(edges[0], edges[0])]
        bins = ([[None, float(edges[0])]] + [[float(lo), float(hi)] for lo, hi in pairs]
                + [[float(edges[-1]), None]])
        return {"type": "numeric", "distance": js_divergence(hb, ht), "bins": bins,
                "baseline": _fractions(hb), "target": _fractions(ht)}
    if summary["type"] == "numeric":
        raise ValueError("numeric baseline, non-numeric serving values")
    cb = Counter(summary["counts"])
    ct = Counter(str(v) for v in target if v is not None)
    keys = sorted(set(cb) | set(ct), key=lambda k: (-cb[k], k))
    return {"type": "categorical", "distance": linf_distance(cb, ct), "bins": keys,
            "baseline": _fractions(np.array([cb[k] for k in keys], float)),
            "target": _fractions(np.array([ct[k] for k in keys], float))}


def _fractions(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts]
