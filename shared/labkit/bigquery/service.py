"""BigQuery REST v2 routes: HTTP <-> engine calls, responses shaped as the REST reference.

Paths are those the real client library addresses: /bigquery/v2/projects/{p}/... and
/upload/bigquery/v2/projects/{p}/jobs for load uploads (multipart and resumable).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import threading
import traceback
from pathlib import Path

import duckdb

from labkit.bigquery import (
    arrow_rows,
    copies,
    extracts,
    ids,
    loads,
    locations,
    public_data,
    schema,
)
from labkit.bigquery import job_store as jobstore
from labkit.bigquery.engine import Engine, Result, duck_error
from labkit.bigquery.errors import BigQueryError, duplicate, invalid, not_found, unsupported
from labkit.bigquery.resources import Resources, held_permissions, service_account
from labkit.bigquery.sql import params as sqlparams
from labkit.bigquery.warehouse import LOCATION, Warehouse, now_ms
from labkit.services import uploads
from labkit.services.http import Request, Response, Router
from labkit.services.paging import BadPage, page_of
from labkit.workspace import Workspace

P = r"/bigquery/v2/projects/(?P<project>[^/]+)"
D = P + r"/datasets/(?P<dataset>[^/]+)"
T = D + r"/tables/(?P<table>[^/]+)"
M = D + r"/models/(?P<model>[^/]+)"
R = D + r"/routines/(?P<routine>[^/]+)"
UPLOAD = r"/upload/bigquery/v2/projects/(?P<project>[^/]+)/jobs"


def _bool(value: str | None) -> bool:
    return str(value).lower() in ("true", "1")


def _int64_timestamps(use_int64: str | bool | None, output_format: str | None) -> bool | str:
    """Whether TIMESTAMP cells go out as integer microseconds (else float seconds, or
    schema.ISO: ISO 8601 text), from
    formatOptions: useInt64Timestamp, or timestampOutputFormat (FLOAT64, INT64,
    ISO8601_STRING), never both. https://cloud.google.com/bigquery/docs/reference/rest/v2/DataFormatOptions"""
    if output_format in (None, "", "TIMESTAMP_OUTPUT_FORMAT_UNSPECIFIED"):
        return _bool(use_int64)
    if use_int64 not in (None, ""):
        raise invalid("formatOptions: useInt64Timestamp and timestampOutputFormat cannot "
                      "both be set")
    if output_format in ("FLOAT64", "INT64"):
        return output_format == "INT64"
    if output_format == schema.ISO:  # full text, picoseconds too (timestamp_picos)
        return schema.ISO
    raise invalid(f"Invalid value for formatOptions.timestampOutputFormat: {output_format}")


def _format_int64(request: Request) -> bool | str:
    return _int64_timestamps(request.arg("formatOptions.useInt64Timestamp"),
                             request.arg("formatOptions.timestampOutputFormat"))


def _listing(items: list, request: Request) -> tuple[list, str | None]:
    try:
        return page_of(items, request.arg("maxResults"), request.arg("pageToken"), 1000)
    except BadPage as exc:
        raise BigQueryError(str(exc), "invalid") from None


def _label_filter(text: str | None) -> list[tuple[str, str | None]]:
    """datasets.list's filter: "labels.<name>[:<value>]" terms, ANDed by spaces (BigQuery
    REST reference, datasets.list). A filter is never ignored: Beam deletes every dataset a
    label filter lists as its own temporary datasets."""
    terms = []
    for term in (text or "").split():
        name, _, value = term.partition(":")
        if not name.startswith("labels.") or not name[len("labels."):]:
            raise BigQueryError(f"Invalid filter: {text}; the filter is labels.<name>[:<value>] "
                                "terms separated by spaces", "invalid")
        terms.append((name[len("labels."):], value if ":" in term else None))
    return terms


class BigQueryService:
    def __init__(self, workspace: Workspace, registry=None, vertex=None):
        """registry: labkit.vertex.bigquery_models.VertexRegistration (BigQuery ML models in
        the Vertex AI Model Registry); vertex: bigquery.vertex_ai.VertexCaller."""
        self.workspace = workspace
        root = workspace.path("bigquery", "x").parent
        self.root = root
        self.wh = Warehouse(root / "warehouse.duckdb")
        public_data.ensure(self.wh)
        from labkit.bigquery.connections import ConnectionStore  # remote models' connections
        from labkit.storage import local_path  # EXPORT MODEL writes to the local storage

        self.engine = Engine(self.wh, root / "models", {
            "storage_path": lambda uri: local_path(uri, workspace), "registry": registry,
            "connections": ConnectionStore(workspace), "vertex": vertex,
            "dataset_location": self.wh.dataset_location, "table_meta": self.wh.table_meta})
        self.resources = Resources(self.engine)
        self.jobs = jobstore.JobStore(root / "jobs", self.wh)
        self.wh.query_results = self._query_results  # SQL may read a query's results
        self.uploads: dict[str, dict] = {}
        self._upload_lock = threading.Lock()

    def _query_results(self, project: str, dataset: str, table: str):
        result = self.jobs.anonymous_result(project, dataset, table)
        return None if result is None else result.table

    # --- wiring -------------------------------------------------------------------------

    def register(self, router: Router) -> None:
        def wrap(handler):
            def call(request: Request):
                try:
                    ids.check_params(request.params)  # no id in a path may name a path
                    return handler(request, **request.params)
                except BigQueryError as exc:
                    raise exc.http() from exc
            # Anything else is a bug: services.http answers it with its one policy (a 501
            # that no client retries, naming the bug).
            return call

        routes = [
            ("POST", P + "/queries", self.query),
            ("GET", P + r"/queries/(?P<job_id>[^/]+)", self.get_query_results),
            ("POST", P + "/jobs", self.insert_job),
            ("GET", P + "/jobs", self.list_jobs),
            ("GET", P + r"/jobs/(?P<job_id>[^/]+)", self.get_job),
            ("POST", P + r"/jobs/(?P<job_id>[^/]+)/cancel", self.cancel_job),
            ("DELETE", P + r"/jobs/(?P<job_id>[^/]+)/delete", self.delete_job),
            ("GET", P + "/datasets", self.list_datasets),
            ("POST", P + "/datasets", self.insert_dataset),
            ("GET", D, self.get_dataset),
            ("PATCH", D, self.patch_dataset),
            ("PUT", D, self.update_dataset),
            ("DELETE", D, self.delete_dataset),
            ("GET", D + "/tables", self.list_tables),
            ("GET", D + "/routines", self.list_routines),
            ("POST", D + "/routines", self.insert_routine),
            ("GET", R, self.get_routine),
            ("PUT", R, self.update_routine),
            ("PATCH", R, self.patch_routine),
            ("DELETE", R, self.delete_routine),
            ("POST", D + "/tables", self.insert_table),
            ("GET", T, self.get_table),
            ("PATCH", T, self.patch_table),
            ("PUT", T, self.update_table),
            ("DELETE", T, self.delete_table),
            ("GET", T + "/data", self.list_rows),
            ("POST", T + "/insertAll", self.insert_all),
            ("POST", T + ":testIamPermissions", self.test_table_permissions),
            ("GET", P + "/serviceAccount", self.get_service_account),
            ("GET", D + "/models", self.list_models),
            ("GET", M, self.get_model),
            ("PATCH", M, self.patch_model),
            ("DELETE", M, self.delete_model),
            ("POST", UPLOAD, self.upload_start),
            ("PUT", UPLOAD, self.upload_chunk),
            ("POST", P + "/jobs/(?P<job_id>[^/]+)/upload", self.upload_chunk_post),
        ]
        for method, pattern, handler in routes:
            router.add(method, pattern, wrap(handler))

    # --- queries ------------------------------------------------------------------------

    def _run_query(self, project: str, job_id: str, location: str | None, config: dict,
                   parent: str | None = None) -> tuple[dict, Result | None, BigQueryError | None]:
        """Runs a query job to completion and stores it; returns (resource, result, error)."""
        query = config.get("query") or {}
        if isinstance(query.get("queryParameters"), list):  # echoed as BigQuery does
            query = {**query, "queryParameters": sqlparams.as_strings(query["queryParameters"])}
            config = {**config, "query": query}
        created = now_ms()
        default = query.get("defaultDataset") or {}
        dry_run = bool(config.get("dryRun"))
        result, error = None, None
        where = locations.JobLocation(self.wh.dataset_location, location)
        session = None
        if not isinstance(query.get("query") or "", str):
            error = BigQueryError(f"Invalid value for query: {query.get('query')!r} is not a "
                                  "string", "invalid")
        elif query.get("useLegacySql") is True:
            error = BigQueryError("Legacy SQL is not supported by the local BigQuery; set "
                                  "use_legacy_sql=False (the client's default). It runs with "
                                  "LAB_BACKEND=gcp.", "invalidQuery", "query")
        else:
            try:
                session = self._session(project, location, query)
                result = self.engine.run(query.get("query") or "",
                                         project=default.get("projectId") or project,
                                         dataset=default.get("datasetId"),
                                         parameters=query.get("queryParameters"),
                                         dry_run=dry_run, location=where, session=session)
                if query.get("destinationTable") and result.table is not None and not dry_run:
                    dest = query["destinationTable"]
                    if self.wh.dataset_exists(dest.get("projectId") or project,
                                              dest.get("datasetId") or ""):
                        where.touch(dest.get("projectId") or project, dest["datasetId"])
                    self._write_destination(query, result)
            except BigQueryError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - see internal_error
                error = internal_error(exc)
        location = where.effective  # the job ran where its datasets are
        if (error is None and not dry_run and result is not None and result.table is not None
                and result.statement_type == "SELECT" and not query.get("destinationTable")):
            # as BigQuery does: the results are an anonymous table the client may read
            # through the Storage Read API
            config = {**config, "query": {**query, "destinationTable": jobstore.anonymous_table(
                project, location or LOCATION, job_id)}}
        resource = jobstore.job_resource(
            project, job_id, location, config, (created, created, now_ms()), result=result,
            error=error, parent_job_id=parent,
            extra_stats={"sessionInfo": {"sessionId": session.id}} if session else None)
        if not dry_run:
            self.jobs.save(resource, result)
            if result is not None:
                for child in result.children:  # scripts: one child job per statement
                    child_config = {"query": {"query": "", "useLegacySql": False}}
                    self.jobs.save(jobstore.job_resource(
                        project, jobstore.new_job_id(), location, child_config,
                        (created, created, now_ms()), result=child, parent_job_id=job_id),
                        child)
        return resource, result, error

    def _session(self, project: str, location: str | None, query: dict):
        """The session a query runs in: a new one (createSession), the one its connection
        property session_id names, or none. No other connection property is local."""
        properties = query.get("connectionProperties") or []
        if not isinstance(properties, list) or not all(isinstance(p, dict)
                                                       for p in properties):
            raise invalid("connectionProperties must be a list of {key, value} objects")
        others = [str(p.get("key")) for p in properties if p.get("key") != "session_id"]
        if others:
            raise unsupported(f"Connection properties ({', '.join(others)})")
        named = [p.get("value") for p in properties]
        if len(named) > 1:
            raise invalid("connectionProperties names session_id more than once")
        if query.get("createSession"):
            if named:
                raise invalid("createSession cannot be combined with a session_id")
            return self.engine.sessions.create(
                project, locations.normalize(location) if location else LOCATION)
        return self.engine.sessions.get(named[0], project) if named else None

    def _write_destination(self, query: dict, result: Result) -> None:
        dest = query["destinationTable"]
        scratch = self.root / "tmp" / f"dest_{secrets.token_hex(6)}.parquet"
        scratch.parent.mkdir(parents=True, exist_ok=True)
        import pyarrow.parquet as pq

        pq.write_table(result.table, scratch)
        try:
            loads.run_load(self.wh, {
                "destinationTable": dest, "sourceFormat": "PARQUET",
                "writeDisposition": query.get("writeDisposition") or "WRITE_EMPTY",
                "createDisposition": query.get("createDisposition") or "CREATE_IF_NEEDED",
            }, scratch)
        finally:
            scratch.unlink(missing_ok=True)

    def query(self, request: Request, project: str):
        body = request.json()
        ids.check_reference(body.get("defaultDataset"), table_key=None)
        job_id = jobstore.new_job_id()
        query = {k: body[k] for k in ("query", "useLegacySql", "defaultDataset",
                                      "queryParameters", "parameterMode", "maximumBytesBilled",
                                      "labels", "createSession", "connectionProperties")
                 if k in body}
        query["useLegacySql"] = body.get("useLegacySql") is True
        config = {"query": query}
        if body.get("dryRun"):
            config["dryRun"] = True
        resource, result, error = self._run_query(project, job_id, body.get("location"), config)
        if error is not None:
            raise error
        options = body.get("formatOptions") or {}
        return self._results_response(
            "bigquery#queryResponse", resource, result,
            max_results=body.get("maxResults"), start_index=None, page_token=None,
            int64=_int64_timestamps(options.get("useInt64Timestamp"),
                                    options.get("timestampOutputFormat")))

    def _results_response(self, kind: str, resource: dict, result: Result | None, *,
                          max_results, start_index, page_token, int64: bool) -> Response:
        ref = resource["jobReference"]
        stats = resource["statistics"]
        qstats = stats.get("query", {})
        body = {"kind": kind, "jobReference": ref, "jobComplete": True, "cacheHit": False,
                "totalBytesProcessed": qstats.get("totalBytesProcessed", "0"),
                "queryId": ref["jobId"], "location": ref.get("location", LOCATION),
                "creationTime": stats["creationTime"], "startTime": stats["startTime"],
                "endTime": stats["endTime"]}
        if "totalBytesBilled" in qstats:
            body["totalBytesBilled"] = qstats["totalBytesBilled"]
        for key in ("numDmlAffectedRows", "dmlStats"):
            if key in qstats:
                body[key] = qstats[key]
        if "schema" in qstats:
            body["schema"] = qstats["schema"]
        rows = None
        if result is not None and result.table is not None:
            total = result.table.num_rows
            start, count, nxt = jobstore.page_bounds(total, start_index, page_token,
                                                     max_results)
            body["totalRows"] = str(total)
            if nxt:
                body["pageToken"] = nxt
            if count:
                rows = jobstore.rows_json(self.wh.cursor(), result.table, start, count, int64,
                                          result.duck_types, result.fields)
        elif "schema" in qstats or qstats.get("statementType") == "SELECT":
            body["totalRows"] = "0"
        else:
            body["totalRows"] = str(qstats.get("numDmlAffectedRows", "0"))
        text = json.dumps(body)
        if rows:
            text = text[:-1] + ', "rows": ' + rows + "}"
        return Response(200, text.encode(), {"Content-Type": "application/json; charset=UTF-8"})

    def get_query_results(self, request: Request, project: str, job_id: str):
        resource = self._job(project, job_id, request.arg("location"))
        error = resource["status"].get("errorResult")
        if error:
            raise BigQueryError(error.get("message", "Job failed"),
                                error.get("reason", "invalidQuery"), error.get("location"))
        if "query" not in resource["configuration"]:
            raise invalid(f"Job {project}:{job_id} is not a query job")
        result = self.jobs.result(project, job_id)
        qstats = resource["statistics"].get("query", {})
        if result is None and "schema" in qstats:
            raise BigQueryError(f"Results of job {project}:{job_id} are no longer available "
                                "(the local services were restarted). Run the query again.",
                                "notFound")
        return self._results_response(
            "bigquery#getQueryResultsResponse", resource, result,
            max_results=request.arg("maxResults"), start_index=request.arg("startIndex"),
            page_token=request.arg("pageToken"),
            int64=_format_int64(request))

    # --- jobs ---------------------------------------------------------------------------

    def _job(self, project: str, job_id: str, location: str | None = None) -> dict:
        """A job; asked for in another location than it ran in, it is not found there."""
        resource = self.jobs.get(project, job_id)
        ran = locations.normalize((resource or {}).get("jobReference", {}).get("location")
                                  or LOCATION)
        if resource is None or (location and locations.normalize(location) != ran):
            raise not_found("Job", f"{project}:{locations.normalize(location or ran)}.{job_id}",
                            locations.normalize(location or ran))
        return resource

    def insert_job(self, request: Request, project: str):
        body = request.json()
        return self._insert(project, body, None)

    def _insert(self, project: str, body: dict, data: Path | None):
        if not isinstance(body, dict):
            raise invalid("The job resource must be a JSON object")
        ref = body.get("jobReference") or {}
        job_id = ids.job(ref.get("jobId") or jobstore.new_job_id())
        project = ids.project(ref.get("projectId") or project)
        location = ref.get("location")
        config = body.get("configuration") or {}
        _check_config_ids(config)
        if not config.get("dryRun") and self.jobs.exists(project, job_id):
            raise duplicate("Job", f"{project}:{location or LOCATION}.{job_id}")
        if "query" in config:
            resource, _, error = self._run_query(project, job_id, location, config)
            if error is not None and config.get("dryRun"):
                raise error  # a dry run answers the request itself, as BigQuery does
            return resource
        if "load" in config:
            return self._load(project, job_id, location, config, data)
        if "extract" in config:
            return self._extract(project, job_id, location, config)
        if "copy" in config:
            return self._copy(project, job_id, location, config)
        kind = next(iter(config), "unknown")
        error = BigQueryError(f"{kind} jobs are not supported by the local BigQuery. It runs "
                              "with LAB_BACKEND=gcp.", "invalid")
        created = now_ms()
        resource = jobstore.job_resource(project, job_id, location, config,
                                         (created, created, created), error=error)
        self.jobs.save(resource)
        return resource

    def _load(self, project: str, job_id: str, location: str | None, config: dict,
              data: Path | None) -> dict:
        created = now_ms()
        error, stats = None, None
        load = config["load"]
        where = locations.JobLocation(self.wh.dataset_location, location)
        try:
            self._locate(where, project, load.get("destinationTable"))
            if data is None:
                staged = self._resolve_uris(load.get("sourceUris") or [])
                try:
                    stats = loads.run_load(self.wh, load, staged)
                finally:
                    staged.unlink(missing_ok=True)
            else:
                stats = loads.run_load(self.wh, load, data)
        except BigQueryError as exc:
            error = exc
        resource = jobstore.job_resource(project, job_id, where.effective, config,
                                         (created, created, now_ms()), error=error,
                                         extra_stats={"load": stats} if stats else None)
        self.jobs.save(resource)
        return resource

    def _extract(self, project: str, job_id: str, location: str | None, config: dict) -> dict:
        created = now_ms()
        error, stats = None, None
        where = locations.JobLocation(self.wh.dataset_location, location)
        try:
            extract = config["extract"] or {}
            self._locate(where, project, extract.get("sourceTable") or extract.get("sourceModel"))
            if (config["extract"] or {}).get("sourceModel"):
                stats = extracts.run_model_extract(self.engine.ml_engine(required=True),
                                                   config["extract"])
            else:
                stats = extracts.run_extract(self.wh, config["extract"], self.workspace)
        except BigQueryError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - see internal_error
            error = internal_error(exc)
        resource = jobstore.job_resource(project, job_id, where.effective, config,
                                         (created, created, now_ms()), error=error,
                                         extra_stats={"extract": stats} if stats else None)
        self.jobs.save(resource)
        return resource

    def _copy(self, project: str, job_id: str, location: str | None, config: dict) -> dict:
        created = now_ms()
        error, stats = None, None
        where = locations.JobLocation(self.wh.dataset_location, location)
        try:
            copy = config["copy"] or {}
            for ref in [*(copy.get("sourceTables") or []), copy.get("sourceTable"),
                        copy.get("destinationTable")]:
                self._locate(where, project, ref)  # every table in one location
            stats = copies.run_copy(self.wh, copy, project)
        except BigQueryError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - see internal_error
            error = internal_error(exc)
        resource = jobstore.job_resource(project, job_id, where.effective, config,
                                         (created, created, now_ms()), error=error,
                                         extra_stats={"copy": stats} if stats else None)
        self.jobs.save(resource)
        return resource

    def _locate(self, where: locations.JobLocation, project: str, ref: dict | None) -> None:
        """A load or extract job runs where its table's dataset is."""
        if isinstance(ref, dict) and ref.get("datasetId") and self.wh.dataset_exists(
                ref.get("projectId") or project, ref["datasetId"]):
            where.touch(ref.get("projectId") or project, ref["datasetId"])

    def _resolve_uris(self, uris: list[str]) -> Path:
        if len(uris) != 1:
            raise invalid("The local BigQuery loads one source URI per job")
        uri = uris[0]
        try:
            from labkit.storage import local_path  # the local Cloud Storage maps gs:// here
        except ImportError:
            local_path = None
        if local_path is None or not uri.startswith("gs://") or "*" in uri:
            raise BigQueryError(f"Loading from {uri} is not supported by the local BigQuery "
                                "(load from a file or a DataFrame instead). It runs with "
                                "LAB_BACKEND=gcp.", "invalid")
        path = Path(local_path(uri, self.workspace))
        if not path.is_file():
            raise BigQueryError(f"Not found: URI {uri}", "notFound")
        # DuckDB reads only the service's scratch folders: stage the object there
        staged = self._scratch().with_suffix(path.suffix)
        try:
            os.link(path, staged)
        except OSError:
            shutil.copyfile(path, staged)
        return staged

    def get_job(self, request: Request, project: str, job_id: str):
        return self._job(project, job_id, request.arg("location"))

    def cancel_job(self, request: Request, project: str, job_id: str):
        return {"kind": "bigquery#jobCancelResponse",
                "job": self._job(project, job_id, request.arg("location"))}

    def delete_job(self, request: Request, project: str, job_id: str):
        self._job(project, job_id, request.arg("location"))
        self.jobs.delete(project, job_id)
        return Response(204)

    def list_jobs(self, request: Request, project: str):
        items = self.jobs.list(project)
        states = {s.upper() for s in request.query.get("stateFilter", [])}
        parent = request.arg("parentJobId")
        if states:
            items = [j for j in items if j["status"]["state"] in states]
        if parent:
            items = [j for j in items if j["statistics"].get("parentJobId") == parent]
        else:
            items = [j for j in items if "parentJobId" not in j["statistics"]]
        try:
            min_created = int(request.arg("minCreationTime") or 0)
            max_created = int(request.arg("maxCreationTime") or 0)
        except ValueError as exc:
            raise invalid(f"Invalid creation time filter: {exc}") from exc
        items = [j for j in items
                 if int(j["statistics"]["creationTime"]) >= min_created
                 and (not max_created or int(j["statistics"]["creationTime"]) <= max_created)]
        page, token = _listing(items, request)
        jobs = [{"id": j["id"], "kind": j["kind"], "jobReference": j["jobReference"],
                 "state": j["status"]["state"], "configuration": j["configuration"],
                 "status": j["status"], "statistics": j["statistics"],
                 "user_email": j["user_email"], "principal_subject": j["principal_subject"]}
                for j in page]
        body = {"kind": "bigquery#jobList", "etag": secrets.token_hex(8), "jobs": jobs}
        if token:
            body["nextPageToken"] = token
        return body

    # --- uploads ------------------------------------------------------------------------

    def _scratch(self) -> Path:
        path = self.root / "uploads" / secrets.token_hex(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def upload_start(self, request: Request, project: str):
        kind = request.arg("uploadType")
        if kind == "multipart":
            metadata, data = _multipart(request)
            path = self._scratch()
            path.write_bytes(data)
            try:
                return self._insert(project, metadata, path)
            finally:
                path.unlink(missing_ok=True)
        if kind == "resumable":
            upload_id = secrets.token_urlsafe(16)
            with self._upload_lock:
                self.uploads[upload_id] = {"metadata": request.json(), "path": self._scratch(),
                                           "project": project}
            host = request.headers.get("host", "127.0.0.1")
            location = (f"http://{host}/upload/bigquery/v2/projects/{project}/jobs"
                        f"?uploadType=resumable&upload_id={upload_id}")
            return Response(200, {}, {"Location": location})
        if kind == "media":
            raise invalid("uploadType=media needs job metadata; use multipart or resumable")
        raise invalid(f"Unknown uploadType {kind!r}")

    def upload_chunk_post(self, request: Request, project: str, job_id: str):
        raise invalid("Use the resumable upload URL returned by the upload request")

    def upload_chunk(self, request: Request, project: str):
        upload_id = request.arg("upload_id") or ""
        with self._upload_lock:
            session = self.uploads.get(upload_id)
        if session is None:
            raise BigQueryError(f"Upload session {upload_id} not found", "notFound")
        path: Path = session["path"]
        span = request.headers.get("content-range", "")
        start, total = _content_range(span, len(request.body))
        with open(path, "ab" if path.exists() else "wb") as f:
            f.seek(start)
            f.truncate(start)
            f.write(request.body)
        received = start + len(request.body)
        if total is None or received < total:
            headers = {"Range": f"bytes=0-{received - 1}"} if received else {}
            return Response(308, b"", headers)
        with self._upload_lock:
            self.uploads.pop(upload_id, None)
        try:
            return self._insert(project, session["metadata"], path)
        finally:
            path.unlink(missing_ok=True)

    # --- datasets, tables, rows -----------------------------------------------------------

    def list_datasets(self, request: Request, project: str):
        wanted = _label_filter(request.arg("filter"))
        hidden_too = str(request.arg("all")).lower() == "true"
        shown = [d for d in self.resources.list_datasets(project)
                 # hidden datasets (a query's anonymous results) are listed only with all
                 if (hidden_too or not d["datasetReference"]["datasetId"].startswith("_"))
                 and all(key in d.get("labels", {}) and value in (None, d["labels"][key])
                         for key, value in wanted)]
        page, token = _listing(shown, request)
        body = {"kind": "bigquery#datasetList", "etag": secrets.token_hex(8), "datasets": page}
        if token:
            body["nextPageToken"] = token
        return body

    def insert_dataset(self, request: Request, project: str):
        body = request.json()
        ids.check_reference((body or {}).get("datasetReference"), table_key=None)
        return self.resources.create_dataset(project, body)

    def get_dataset(self, request: Request, project: str, dataset: str):
        return self.resources.dataset(project, dataset)

    def patch_dataset(self, request: Request, project: str, dataset: str):
        return self.resources.patch_dataset(project, dataset, request.json(), replace=False)

    def update_dataset(self, request: Request, project: str, dataset: str):
        return self.resources.patch_dataset(project, dataset, request.json(), replace=True)

    def delete_dataset(self, request: Request, project: str, dataset: str):
        self.resources.delete_dataset(project, dataset, _bool(request.arg("deleteContents")))
        return Response(204)

    def list_tables(self, request: Request, project: str, dataset: str):
        items = self.resources.list_tables(project, dataset)
        page, token = _listing(items, request)
        body = {"kind": "bigquery#tableList", "etag": secrets.token_hex(8), "tables": page,
                "totalItems": len(items)}
        if token:
            body["nextPageToken"] = token
        return body

    # --- routines (labkit.bigquery.routines) ---------------------------------------------

    def list_routines(self, request: Request, project: str, dataset: str):
        """routines.list (BigQuery DataFrames lists its session dataset's routines when the
        session closes; the hidden results dataset holds none)."""
        if jobstore.is_anonymous_dataset(dataset):
            return {}
        items = self.engine.routines.list(project, dataset, request.arg("filter"),
                                          request.arg("readMask"))
        page, token = _listing(items, request)
        body = {"routines": page} if page else {}
        if token:
            body["nextPageToken"] = token
        return body

    def insert_routine(self, request: Request, project: str, dataset: str):
        return self.engine.routines.insert(project, dataset, request.json())

    def get_routine(self, request: Request, project: str, dataset: str, routine: str):
        return self.engine.routines.get(project, dataset, routine, request.arg("readMask"))

    def update_routine(self, request: Request, project: str, dataset: str, routine: str):
        return self.engine.routines.update(project, dataset, routine, request.json(),
                                           request.headers.get("if-match"))

    def patch_routine(self, request: Request, project: str, dataset: str, routine: str):
        """The REST API has no routines.patch (v2 discovery document): what BigQuery says."""
        raise BigQueryError("Routines have no patch method: routines.update (PUT) replaces "
                            "the whole routine", "methodNotAllowed")

    def delete_routine(self, request: Request, project: str, dataset: str, routine: str):
        self.engine.routines.delete(project, dataset, routine)
        return Response(204)

    def insert_table(self, request: Request, project: str, dataset: str):
        body = request.json()
        ids.check_reference((body or {}).get("tableReference"))
        return self.resources.create_table(project, dataset, body)

    def get_table(self, request: Request, project: str, dataset: str, table: str):
        result = self.jobs.anonymous_result(project, dataset, table)
        if result is not None:  # a query's results, as their anonymous table
            return {"kind": "bigquery#table", "type": "TABLE",
                    "id": f"{project}:{dataset}.{table}",
                    "tableReference": {"projectId": project, "datasetId": dataset,
                                       "tableId": table},
                    "schema": {"fields": result.fields}, "numRows": str(result.table.num_rows),
                    "numBytes": str(result.table.nbytes), "location": LOCATION}
        return self.resources.table(project, dataset, table)

    def patch_table(self, request: Request, project: str, dataset: str, table: str):
        return self.resources.patch_table(project, dataset, table, request.json(),
                                          replace=False)

    def update_table(self, request: Request, project: str, dataset: str, table: str):
        return self.resources.patch_table(project, dataset, table, request.json(), replace=True)

    def test_table_permissions(self, request: Request, project: str, dataset: str, table: str):
        self.resources.table(project, dataset, table)  # a 404 for a table that is not there
        return held_permissions(project, (request.json() or {}).get("permissions"))

    def get_service_account(self, request: Request, project: str):
        return service_account(project)

    def delete_table(self, request: Request, project: str, dataset: str, table: str):
        self.resources.delete_table(project, dataset, table)
        return Response(204)

    def list_rows(self, request: Request, project: str, dataset: str, table: str):
        kind = self.resources._require_table(project, dataset, table)
        if kind == "VIEW":
            raise invalid("Cannot list a table of type VIEW.")
        selected = request.arg("selectedFields")
        cols = "*"
        if selected:
            cols = ", ".join(schema.quote(c.strip().split(".")[0]) for c in selected.split(","))
        cursor = self.wh.cursor()
        total = self.wh.num_rows(project, dataset, table)
        start, count, nxt = jobstore.page_bounds(total, request.arg("startIndex"),
                                                 request.arg("pageToken"),
                                                 request.arg("maxResults"))
        try:
            rel = cursor.sql(f"SELECT {cols} FROM {self.wh.ref(project, dataset, table)} "
                             f"LIMIT {count} OFFSET {start}")
            _, types, page = arrow_rows.to_arrow(rel)
            fields = schema.fields(rel.columns, types)
        except duckdb.Error as exc:
            raise duck_error(exc) from exc
        rows = jobstore.rows_json(cursor, page, 0, page.num_rows,
                                  _format_int64(request),
                                  types, fields)
        body = {"kind": "bigquery#tableDataList", "etag": secrets.token_hex(8),
                "totalRows": str(total)}
        if nxt:
            body["pageToken"] = nxt
        text = json.dumps(body)[:-1] + ', "rows": ' + rows + "}"
        return Response(200, text.encode(), {"Content-Type": "application/json; charset=UTF-8"})

    def insert_all(self, request: Request, project: str, dataset: str, table: str):
        errors = loads.insert_all(self.wh, project, dataset, table, request.json())
        body = {"kind": "bigquery#tableDataInsertAllResponse"}
        if errors:
            body["insertErrors"] = errors
        return body

    # --- models (BigQuery ML) -------------------------------------------------------------

    def _ml(self):
        return self.engine.ml_engine(required=True)

    def list_models(self, request: Request, project: str, dataset: str):
        if not self.wh.dataset_exists(project, dataset):
            raise not_found("Dataset", f"{project}:{dataset}")
        items = self._ml().list_models(project, dataset)
        page, token = _listing(items, request)
        body = {"models": page}
        if token:
            body["nextPageToken"] = token
        return body

    def get_model(self, request: Request, project: str, dataset: str, model: str):
        try:
            return self._ml().get_model(project, dataset, model)
        except KeyError:
            raise not_found("Model", f"{project}:{dataset}.{model}") from None

    def patch_model(self, request: Request, project: str, dataset: str, model: str):
        try:
            return self._ml().patch_model(project, dataset, model, request.json())
        except KeyError:
            raise not_found("Model", f"{project}:{dataset}.{model}") from None

    def delete_model(self, request: Request, project: str, dataset: str, model: str):
        try:
            self._ml().delete_model(project, dataset, model)
        except KeyError:
            raise not_found("Model", f"{project}:{dataset}.{model}") from None
        return Response(204)


def _check_config_ids(config: dict) -> None:
    """The table and dataset references a job configuration names."""
    if not isinstance(config, dict):
        raise invalid("configuration must be a JSON object")
    for kind, keys in (("query", ("defaultDataset", "destinationTable")),
                       ("load", ("destinationTable",)), ("extract", ("sourceTable",)),
                       ("copy", ("destinationTable", "sourceTable"))):
        section = config.get(kind)
        if isinstance(section, dict):
            for key in keys:
                ids.check_reference(section.get(key),
                                    table_key=None if key == "defaultDataset" else "tableId")


def internal_error(exc: Exception) -> BigQueryError:
    """A bug met while a job ran: the job fails with it (as a non-retryable `invalid`; the
    client library retries backendError for minutes, which would hang a notebook cell)."""
    traceback.print_exc(file=sys.stderr)
    return BigQueryError(f"Internal error in the local BigQuery ({type(exc).__name__}: {exc}). "
                         "Please report it; the statement did not change any table.", "invalid")


def _multipart(request: Request) -> tuple[dict, bytes]:
    try:
        upload = uploads.multipart_related(request.headers.get("content-type", ""), request.body)
    except uploads.BadUpload as exc:
        raise invalid(str(exc)) from None
    return upload.metadata, upload.media


def _content_range(value: str, length: int) -> tuple[int, int | None]:
    """Where this chunk starts and the upload's total size, if known."""
    try:
        first, total = uploads.content_range(value)
    except uploads.BadUpload as exc:
        raise invalid(str(exc)) from None
    if first is None:  # 'bytes */N': the last, empty chunk; no header: the whole body
        return ((total or 0) - length if total else 0), (total if value else length)
    return first, total


def register(router: Router, services) -> None:
    from labkit.bigquery import storage_read
    from labkit.bigquery.vertex_ai import VertexCaller  # remote models call Vertex AI

    service = BigQueryService(services.workspace, services.bigquery_models,
                              VertexCaller(services.endpoint, services.workspace.token))
    service.register(router)
    # the Storage Read API over gRPC, behind the proxy (registered before this room)
    storage_read.serve(services.workspace, service.engine, service.wh,
                       service.jobs.anonymous_result)

