"""Fixtures for the local BigQuery tests: the real client against the local service."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="module")
def client(local_env):
    from google.cloud import bigquery

    return bigquery.Client()


@pytest.fixture(scope="module")
def dataset(client):
    """A fresh dataset for one test module, deleted with its contents afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    client.create_dataset(name)
    yield name
    client.delete_dataset(name, delete_contents=True, not_found_ok=True)
