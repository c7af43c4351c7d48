"""The BigQuery SQL dialect on DuckDB: script splitting, parameters, table names and the
rewrites where the two engines differ (see translate.py for the list)."""
