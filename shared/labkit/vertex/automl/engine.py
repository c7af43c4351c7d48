"""Transitional re-export: the search engine lives in labkit.automl.engine (splits in
labkit.automl.splits). labkit.vertex.training.datasets and bench/bench_automl.py still
import it from here; delete this module once they import labkit.automl."""

from labkit.automl.engine import ESTIMATORS, SearchResult, budget_seconds, search
from labkit.automl.splits import predefined_roles, random_roles, timestamp_roles

__all__ = ["ESTIMATORS", "SearchResult", "budget_seconds", "predefined_roles", "random_roles",
           "search", "timestamp_roles"]
