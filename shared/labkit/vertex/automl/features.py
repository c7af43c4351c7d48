"""Transitional re-export: column transformations live in labkit.automl.features.
bench/bench_automl.py still imports Featurizer from here; delete this module once it
imports labkit.automl.features."""

from labkit.automl.features import Featurizer

__all__ = ["Featurizer"]
