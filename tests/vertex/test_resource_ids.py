"""Vertex resource ids stay unique when a library reseeds Python's global random (FLAML and
Keras do it inside the services process): a second pipeline run's execution once got the
first one's id and failed with ALREADY_EXISTS."""

from __future__ import annotations

import random

from labkit.vertex.store import new_id


def test_ids_do_not_repeat_after_the_global_random_is_reseeded():
    ids = []
    for _ in range(3):
        random.seed(0)
        ids.append(new_id())
    assert len(set(ids)) == 3
    assert all(10**18 <= int(i) <= 9 * 10**18 for i in ids)
