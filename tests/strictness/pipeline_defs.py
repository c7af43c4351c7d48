"""Pipelines for the strictness tests (no `from __future__ import annotations`: kfp reads
the parameter annotations as types)."""

from google_cloud_pipeline_components.v1.bigquery import BigqueryQueryJobOp
from kfp import dsl


@dsl.pipeline(name="query-in-region")
def query_in_region(project: str, location: str):
    BigqueryQueryJobOp(project=project, location=location,
                       query="SELECT COUNT(*) AS n FROM "
                             "`bigquery-public-data.ml_datasets.penguins`")
