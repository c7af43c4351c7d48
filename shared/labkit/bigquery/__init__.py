"""The local BigQuery: REST wire (service), SQL dialect (sql/), storage and catalog
(storage), query and load jobs (engine, jobs, loads), public data (public_data), and
BigQuery ML (ml/, its own room). State lives in one DuckDB file in the workspace that
only the services process opens."""
