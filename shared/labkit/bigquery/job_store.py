"""Jobs: their REST resources (kept on disk), their results (kept in memory) and result
pages in the f/v row shape.

Jobs run to completion inside jobs.insert / jobs.query, so every job a client sees is
DONE (with status.errorResult when it failed) and nobody polls. A SELECT's job names a
destination table as BigQuery's do: an anonymous table (`anon...`) in the project's hidden
dataset for the location (`_...`), which is the job's result kept here; the client reads it
through the Storage Read API (labkit.bigquery.storage_read) when it takes that fast path.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections import OrderedDict
from pathlib import Path

import pyarrow as pa

from labkit.bigquery import schema as bqschema
from labkit.bigquery.engine import Result
from labkit.bigquery.errors import BigQueryError
from labkit.bigquery.warehouse import LOCATION, Warehouse
from labkit.services.files import write_atomic

RESULTS_KEPT = 64  # most recent job results held for paging
MIN_BILLED = 10 * 1024 * 1024  # BigQuery bills at least 10 MB per query that reads data
DEFAULT_PAGE_ROWS = 200_000
PYTHON_ENCODE_ROWS = 500  # pages this small are encoded in Python (no DuckDB round trip)


def anonymous_table(project: str, location: str, job_id: str) -> dict:
    """The destination BigQuery gives a query that names none: a table in the anonymous
    dataset ("_" and a hash, one per project and location; hidden from datasets.list)."""
    dataset = "_" + hashlib.sha1(f"{project}/{location.lower()}".encode()).hexdigest()
    return {"projectId": project, "datasetId": dataset,
            "tableId": "anon" + hashlib.sha1(job_id.encode()).hexdigest()}


def is_anonymous(dataset: str, table: str) -> bool:
    return dataset.startswith("_") and table.startswith("anon")


def is_anonymous_dataset(dataset: str) -> bool:
    """The hidden dataset of a project's query results in one location (anonymous_table)."""
    return len(dataset) == 41 and dataset[0] == "_" and \
        all(c in "0123456789abcdef" for c in dataset[1:])


def new_job_id() -> str:
    return "job_" + secrets.token_urlsafe(18).replace("-", "_")


class JobStore:
    def __init__(self, root: Path, warehouse: Warehouse):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.wh = warehouse
        self._results: OrderedDict[tuple[str, str], Result] = OrderedDict()
        self._recent: OrderedDict[tuple[str, str], dict] = OrderedDict()  # saves a disk read
        self._lock = threading.Lock()

    def _path(self, project: str, job_id: str) -> Path:
        """The job's file: ids are validated (labkit.bigquery.ids) before they get here;
        this still keeps every path inside the jobs folder, and long ids (BigQuery allows
        1024 characters) within a file name's 255 bytes."""
        folder = self._folder(project)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in job_id)
        if len(safe) > 200 or safe != job_id:
            safe = f"{safe[:100]}-{hashlib.sha256(job_id.encode()).hexdigest()[:32]}"
        return folder / f"{safe}.json"

    def _folder(self, project: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_.:" else "_" for c in project)
        if not safe.strip("."):
            raise BigQueryError(f"Invalid project ID '{project}'.", "invalid")
        return self.root / safe.replace(":", "__")

    def exists(self, project: str, job_id: str) -> bool:
        return self._path(project, job_id).exists()

    def save(self, resource: dict, result: Result | None = None) -> None:
        ref = resource["jobReference"]
        write_atomic(self._path(ref["projectId"], ref["jobId"]), json.dumps(resource))
        key = (ref["projectId"], ref["jobId"])
        with self._lock:
            self._recent[key] = resource
            self._recent.move_to_end(key)
            while len(self._recent) > RESULTS_KEPT:
                self._recent.popitem(last=False)
            if result is not None and result.table is not None:
                self._results[key] = result
                self._results.move_to_end(key)
                while len(self._results) > RESULTS_KEPT:
                    self._results.popitem(last=False)

    def get(self, project: str, job_id: str) -> dict | None:
        with self._lock:
            cached = self._recent.get((project, job_id))
        if cached is not None:
            return cached
        path = self._path(project, job_id)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def delete(self, project: str, job_id: str) -> None:
        with self._lock:
            self._recent.pop((project, job_id), None)
            self._results.pop((project, job_id), None)
        self._path(project, job_id).unlink(missing_ok=True)

    def result(self, project: str, job_id: str) -> Result | None:
        with self._lock:
            return self._results.get((project, job_id))

    def anonymous_result(self, project: str, dataset: str, table: str) -> Result | None:
        """The result a query's anonymous destination table holds, while it is kept."""
        if not is_anonymous(dataset, table):
            return None
        with self._lock:
            kept = list(self._results.items())
        for (job_project, job_id), result in kept:
            resource = self.get(job_project, job_id) or {}
            dest = resource.get("configuration", {}).get("query", {}).get("destinationTable")
            if dest == {"projectId": project, "datasetId": dataset, "tableId": table}:
                return result
        return None

    def list(self, project: str) -> list[dict]:
        folder = self._folder(project)
        jobs = []
        for path in folder.glob("*.json") if folder.exists() else []:
            try:
                jobs.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        jobs.sort(key=lambda j: int(j["statistics"].get("creationTime", 0)), reverse=True)
        return jobs


def rows_json(cursor, table: pa.Table, start: int, count: int, int64_timestamps: bool,
              duck_types: list | None = None, fields: list[dict] | None = None) -> str:
    """Rows [start, start+count) of a result as the JSON text of a `rows` array."""
    if count <= 0 or start >= table.num_rows:
        return "[]"
    if fields is not None and count <= PYTHON_ENCODE_ROWS:
        return bqschema.rows_json_py(table.slice(start, count), fields, int64_timestamps)
    name = f"__page_{threading.get_ident()}"
    cursor.register(name, table.slice(start, count))
    try:
        if duck_types is None:
            duck_types = cursor.sql(f"SELECT * FROM {name}").types
        expr = bqschema.row_json_sql(table.column_names, duck_types, int64_timestamps)
        rows = cursor.sql(f"SELECT {expr} FROM {name}").fetchall()
    finally:
        cursor.unregister(name)
    return "[" + ",".join(r[0] for r in rows) + "]"


def page_bounds(total: int, start_index: str | None, page_token: str | None,
                max_results: str | None) -> tuple[int, int, str | None]:
    """(start, count, next page token) for a results page request."""
    try:
        start = int(page_token) if page_token else int(start_index or 0)
        limit = DEFAULT_PAGE_ROWS if max_results in (None, "") else int(max_results)
    except ValueError as exc:
        raise BigQueryError(f"Invalid page token or paging value: {exc}", "invalid") from exc
    start = max(0, start)
    count = max(0, min(limit, total - start))
    nxt = str(start + count) if start + count < total and count > 0 else None
    return start, count, nxt


def query_statistics(result: Result | None, dry_run: bool) -> dict:
    """statistics.query of a job resource (also spread over a jobs.query response)."""
    if result is None:
        return {}
    processed = result.bytes_processed
    stats = {
        "totalBytesProcessed": str(processed),
        "totalBytesBilled": "0" if dry_run or not processed else str(max(processed,
                                                                         MIN_BILLED)),
        "estimatedBytesProcessed": str(processed),
        "cacheHit": False, "statementType": result.statement_type,
        "totalSlotMs": "0", "billingTier": 1,
    }
    if result.fields is not None:
        stats["schema"] = {"fields": result.fields}
    if result.affected_rows is not None:
        stats["numDmlAffectedRows"] = str(result.affected_rows)
    if result.dml_stats:
        stats["dmlStats"] = result.dml_stats
    if result.ddl_operation:
        stats["ddlOperationPerformed"] = result.ddl_operation
    if result.ddl_target_table:
        stats["ddlTargetTable"] = result.ddl_target_table
    if result.ddl_target_dataset:
        stats["ddlTargetDataset"] = result.ddl_target_dataset
    if result.ddl_target_routine:
        stats["ddlTargetRoutine"] = result.ddl_target_routine
    stats.update(result.statistics or {})
    return stats


def job_resource(project: str, job_id: str, location: str | None, configuration: dict,
                 times: tuple[int, int, int], *, result: Result | None = None,
                 error: BigQueryError | None = None, extra_stats: dict | None = None,
                 parent_job_id: str | None = None) -> dict:
    created, started, ended = times
    stats = {"creationTime": str(created), "startTime": str(started), "endTime": str(ended)}
    job_type = next(iter(k for k in ("query", "load", "extract", "copy") if k in configuration),
                    "query")
    dry_run = bool(configuration.get("dryRun"))
    if job_type == "query":
        query_stats = query_statistics(result, dry_run)
        stats["query"] = query_stats
        for key in ("totalBytesProcessed",):
            if key in query_stats:
                stats[key] = query_stats[key]
        if result is not None and result.children:
            stats["numChildJobs"] = str(len(result.children))
        if result is not None and result.transaction_id:  # a statement inside a transaction
            stats["transactionInfo"] = {"transactionId": result.transaction_id}
    if extra_stats:
        stats.update(extra_stats)
    if parent_job_id:
        stats["parentJobId"] = parent_job_id
    status = {"state": "DONE"}
    if error is not None:
        status["errorResult"] = error.error_proto()
        status["errors"] = error.errors or [error.error_proto()]
    return {
        "kind": "bigquery#job", "etag": secrets.token_hex(8),
        "id": f"{project}:{location or LOCATION}.{job_id}",
        "selfLink": f"/bigquery/v2/projects/{project}/jobs/{job_id}",
        "user_email": "learner@pmle-labs.local",
        "jobReference": {"projectId": project, "jobId": job_id,
                         "location": location or LOCATION},
        "configuration": {**configuration, "jobType": job_type.upper()},
        "status": status, "statistics": stats,
        "principal_subject": "user:learner@pmle-labs.local",
        "jobCreationReason": {"code": "REQUESTED"},
    }
