"""labkit.vectors, the neutral engine behind Vector Search (and RAG Engine): exact distances
against numpy, ScaNN tree-AH recall, restricts, numeric filters, crowding, updates, storage."""

from __future__ import annotations

import numpy as np
import pytest

from labkit import vectors
from labkit.vectors import (
    Datapoint,
    EngineUnavailable,
    NumericFilter,
    NumericRestrict,
    Restrict,
    TreeAH,
    VectorError,
    VectorIndex,
)


def _clustered(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim)) * 3
    return (centres[rng.integers(0, 50, n)] + rng.standard_normal((n, dim))).astype(np.float32)


def _points(x, **extra):
    return [Datapoint(str(i), tuple(v), **extra) for i, v in enumerate(x)]


@pytest.mark.parametrize("distance", ["DOT_PRODUCT_DISTANCE", "COSINE_DISTANCE",
                                      "SQUARED_L2_DISTANCE", "L1_DISTANCE"])
def test_exact_search_ranks_and_reports_as_defined(distance):
    x = _clustered(300, 8)
    q = _clustered(3, 8, seed=1)
    index = VectorIndex(8, distance=distance)
    index.upsert(_points(x))
    found = index.search(q, 5)
    for query, neighbours in zip(q, found, strict=True):
        if distance == "DOT_PRODUCT_DISTANCE":
            score = x @ query
            best = np.argsort(-score)[:5]
        elif distance == "COSINE_DISTANCE":
            score = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (query / np.linalg.norm(query))
            best = np.argsort(-score)[:5]
        elif distance == "SQUARED_L2_DISTANCE":
            score = ((x - query) ** 2).sum(1)
            best = np.argsort(score)[:5]
        else:
            score = np.abs(x - query).sum(1)
            best = np.argsort(score)[:5]
        assert [n.id for n in neighbours] == [str(i) for i in best]
        assert np.allclose([n.distance for n in neighbours], score[best], rtol=1e-4)


def test_tree_ah_recall_against_exact():
    x = _clustered(20_000, 32)
    q = _clustered(50, 32, seed=2)
    index = VectorIndex(32, tree_ah=TreeAH(approximate_neighbors_count=100,
                                           leaf_node_embedding_count=200,
                                           leaf_nodes_to_search_percent=10))
    index.upsert(_points(x))
    approx = index.search(q, 10)
    exact = index.search(q, 10, exact=True)
    recall = np.mean([len({n.id for n in a} & {n.id for n in e}) / 10
                      for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.9
    # a smaller search (fewer leaves) finds no more than the full one
    narrow = index.search(q, 10, fraction_leaf_nodes_to_search=0.01)
    narrow_recall = np.mean([len({n.id for n in a} & {n.id for n in e}) / 10
                             for a, e in zip(narrow, exact, strict=True)])
    assert narrow_recall <= recall


@pytest.mark.parametrize("tree", [None, TreeAH(approximate_neighbors_count=50,
                                               leaf_node_embedding_count=100)])
def test_restricts_numeric_filters_and_crowding(tree):
    x = _clustered(2000, 8)
    colours = ["red", "blue", "green", None]
    points = []
    for i, v in enumerate(x):
        colour = colours[i % 4]
        restricts = () if colour is None else (Restrict("colour", (colour,)),)
        if i % 10 == 0:
            restricts += (Restrict("shape", ("square",), ("round",)),)
        points.append(Datapoint(str(i), tuple(v), restricts,
                                (NumericRestrict("price", float(i % 100)),), f"tag{i % 3}"))
    index = VectorIndex(8, distance="SQUARED_L2_DISTANCE", tree_ah=tree)
    index.upsert(points)
    q = x[5]

    red_or_blue = index.search(q, 20, restricts=[Restrict("colour", ("red", "blue"))])[0]
    assert len(red_or_blue) == 20
    assert {int(n.id) % 4 for n in red_or_blue} <= {0, 1}
    not_blue = index.search(q, 20, restricts=[Restrict("colour", ("red", "blue"), ("blue",))])[0]
    assert {int(n.id) % 4 for n in not_blue} == {0}  # the query's deny token excludes blue
    # a datapoint's deny token 'round' keeps it out of queries allowing 'round'
    assert index.search(q, 5, restricts=[Restrict("shape", ("round",))]) == [[]]
    cheap = index.search(q, 20, numeric_filters=[NumericFilter("price", 10, "LESS")])[0]
    assert cheap and all(int(n.id) % 100 < 10 for n in cheap)
    assert index.search(q, 5, numeric_filters=[NumericFilter("weight", 1, "GREATER")]) == [[]]
    crowded = index.search(q, 9, per_crowding_attribute_neighbor_count=2)[0]
    tags = [int(n.id) % 3 for n in crowded]
    assert len(crowded) == 6 and all(tags.count(t) == 2 for t in set(tags))
    exact = VectorIndex(8, distance="SQUARED_L2_DISTANCE")
    exact.upsert(points)
    want = exact.search(q, 20, restricts=[Restrict("colour", ("red", "blue"))])[0]
    overlap = {n.id for n in want} & {n.id for n in red_or_blue}
    assert len(overlap) >= 18


def test_upsert_replace_remove_and_storage(tmp_path):
    x = _clustered(600, 4)
    index = VectorIndex(4, feature_norm="UNIT_L2_NORM",
                        tree_ah=TreeAH(approximate_neighbors_count=200,
                                       leaf_node_embedding_count=50))
    index.upsert(_points(x))
    assert index.search(x[7], 1)[0][0].id == "7"
    index.upsert([Datapoint("7", tuple(-x[7]))])  # replaced: no longer its own neighbour
    assert index.search(x[7], 1)[0][0].id != "7"
    assert index.get(["7", "nope"])[0].vector == pytest.approx(tuple(-x[7]))
    assert index.remove(["3", "3", "missing"]) == 1
    assert len(index) == 599 and "3" not in {n.id for n in index.search(x[3], 10)[0]}
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path)
    assert len(loaded) == 599 and loaded.ids() == index.ids()
    # the searcher is rebuilt (ScaNN's training is randomised): exact answers are equal
    assert [n.id for n in loaded.search(x[9], 3, exact=True)[0]] == \
        [n.id for n in index.search(x[9], 3, exact=True)[0]]
    assert loaded.search(x[9], 1)[0][0].id == "9"


def test_bad_input_is_a_vector_error():
    with pytest.raises(VectorError, match="distanceMeasureType"):
        VectorIndex(4, distance="HAMMING")
    with pytest.raises(VectorError, match="featureNormType"):
        VectorIndex(4, feature_norm="L1")
    with pytest.raises(VectorError, match="L1_DISTANCE"):
        VectorIndex(4, distance="L1_DISTANCE", tree_ah=TreeAH(10))
    with pytest.raises(VectorError, match="approximateNeighborsCount"):
        TreeAH(0)
    index = VectorIndex(4)
    assert index.search([1, 2, 3, 4], 5) == [[]]  # an empty index finds nothing
    with pytest.raises(VectorError, match="Expected 4, got 3"):
        index.upsert([Datapoint("a", (1.0, 2.0, 3.0))])
    index.upsert([Datapoint("a", (1.0, 2.0, 3.0, 4.0))])
    with pytest.raises(VectorError, match="Expected 4, got 2"):
        index.search([1, 2], 1)
    with pytest.raises(VectorError, match="twice"):
        index.upsert([Datapoint("b", (1.0,) * 4), Datapoint("b", (2.0,) * 4)])
    with pytest.raises(VectorError, match="op must be"):
        NumericFilter("price", 1, "BETWEEN")
    assert len(index) == 1  # nothing half-stored


def test_tree_ah_off_linux_is_refused_and_brute_force_still_works(monkeypatch):
    monkeypatch.setattr(vectors.sys, "platform", "darwin")
    with pytest.raises(EngineUnavailable, match="only for Linux"):
        VectorIndex(4, tree_ah=TreeAH(10))
    index = VectorIndex(4)
    index.upsert([Datapoint("a", (1.0, 0.0, 0.0, 0.0)), Datapoint("b", (0.0, 1.0, 0.0, 0.0))])
    assert index.search([1, 0, 0, 0], 1)[0][0].id == "a"
