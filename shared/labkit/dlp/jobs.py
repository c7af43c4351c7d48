"""DLP inspect jobs over a BigQuery table, with findings saved to a BigQuery table.

create_dlp_job returns the job PENDING; a thread runs it (RUNNING, then DONE or FAILED with
the error in DlpJob.errors), reading and writing the local BigQuery through the real client
(services.bigquery). Jobs are kept in the workspace and survive a restart (one that was
running when its process stopped is FAILED, as its thread is gone).

Reference: CreateDlpJobRequest, InspectJobConfig, BigQueryOptions, Action.SaveFindings and
DlpJob in google/privacy/dlp/v2/dlp.proto; the findings table's columns follow the Finding
message (https://cloud.google.com/sensitive-data-protection/docs/querying-findings: quote,
info_type.name, likelihood, location.content_locations[].record_location...).
"""

from __future__ import annotations

import datetime
import json
import random
import re
import threading

from labkit.dlp import inspection
from labkit.dlp.inspection import DlpError
from labkit.services.files import write_atomic
from labkit.services.http import gcp_only_message

_JOB_ID = re.compile(r"[a-zA-Z\d_-]{1,100}")  # CreateDlpJobRequest.job_id
_PARENT = re.compile(r"projects/([^/]+)(?:/locations/([^/]+))?")
_CHUNK_ROWS = 500


def _findings_schema():
    from google.cloud import bigquery

    F = bigquery.SchemaField
    rng = [F("start", "INTEGER"), F("end", "INTEGER")]
    return [
        F("quote", "STRING"),
        F("info_type", "RECORD", fields=[F("name", "STRING")]),
        F("likelihood", "STRING"),
        F("location", "RECORD", fields=[
            F("byte_range", "RECORD", fields=rng),
            F("codepoint_range", "RECORD", fields=rng),
            F("content_locations", "RECORD", mode="REPEATED", fields=[
                F("container_name", "STRING"),
                F("record_location", "RECORD", fields=[
                    F("record_key", "RECORD", fields=[
                        F("id_values", "STRING", mode="REPEATED"),
                        F("big_query_key", "RECORD", fields=[
                            F("table_reference", "RECORD", fields=[
                                F("project_id", "STRING"), F("dataset_id", "STRING"),
                                F("table_id", "STRING")]),
                            F("row_number", "INTEGER")])]),
                    F("field_id", "RECORD", fields=[F("name", "STRING")])])])]),
        F("create_time", "TIMESTAMP"),
        F("job_name", "STRING"),
        F("finding_id", "STRING"),
    ]


def parse_parent(parent: str) -> tuple[str, str]:
    m = _PARENT.fullmatch(parent or "")
    if not m:
        raise DlpError(f'Invalid parent "{parent}": expected projects/{{project_id}} or '
                       f"projects/{{project_id}}/locations/{{location_id}}.")
    return m[1], m[2] or "global"


class DlpJobs:
    """The DLP jobs of one workspace."""

    def __init__(self, workspace, bigquery):
        self.bigquery = bigquery  # labkit.vertex.bq.LocalBigQuery
        self._file = workspace.path("dlp", "jobs.json")
        self._lock = threading.Lock()
        self._jobs = self._load()

    # ---- storage
    def _load(self) -> dict:
        from google.cloud import dlp_v2

        if not self._file.exists():
            return {}
        jobs = {name: dlp_v2.DlpJob.from_json(text)
                for name, text in json.loads(self._file.read_text()).items()}
        for job in jobs.values():
            if job.state in (dlp_v2.DlpJob.JobState.PENDING, dlp_v2.DlpJob.JobState.RUNNING):
                self._fail(job, "The local services stopped while the job was running.")
        return jobs

    def _save(self) -> None:
        from google.cloud import dlp_v2

        write_atomic(self._file, json.dumps(
            {name: dlp_v2.DlpJob.to_json(job) for name, job in self._jobs.items()}))

    def _fail(self, job, message: str) -> None:
        from google.cloud import dlp_v2
        from google.rpc import status_pb2

        job.state = dlp_v2.DlpJob.JobState.FAILED
        job.end_time = _now()
        job.errors.append(dlp_v2.Error(details=status_pb2.Status(code=3, message=message),
                                       timestamps=[_now()]))

    # ---- API
    def create(self, request):
        from google.cloud import dlp_v2

        project, _ = parse_parent(request.parent)
        if "risk_job" in request:
            raise DlpError("Risk analysis jobs are not available on the local Sensitive Data "
                           "Protection; they run with LAB_BACKEND=gcp.", "UNIMPLEMENTED")
        if "inspect_job" not in request:
            raise DlpError("CreateDlpJobRequest must set inspect_job or risk_job.")
        config = request.inspect_job
        self._check(config)
        job_id = request.job_id or f"i-{random.randrange(10**18, 10**19)}"
        if not _JOB_ID.fullmatch(job_id):
            raise DlpError(f'Invalid job_id "{job_id}": it must match [a-zA-Z\\d-_]+ and be at '
                           f"most 100 characters.")
        name = f"{request.parent}/dlpJobs/{job_id}"
        job = dlp_v2.DlpJob(
            name=name, type_=dlp_v2.DlpJobType.INSPECT_JOB,
            state=dlp_v2.DlpJob.JobState.PENDING, create_time=_now(),
            inspect_details=dlp_v2.InspectDataSourceDetails(
                requested_options=dlp_v2.InspectDataSourceDetails.RequestedOptions(
                    job_config=config)))
        with self._lock:
            if name in self._jobs:
                raise DlpError(f"A DLP job named {name} already exists.", "ALREADY_EXISTS")
            self._jobs[name] = job
            self._save()
            created = dlp_v2.DlpJob(job)
        threading.Thread(target=self._run, args=(name, project), daemon=True,
                         name=f"dlp-job-{job_id}").start()
        return created

    def get(self, name: str):
        from google.cloud import dlp_v2

        with self._lock:
            if name not in self._jobs:
                raise DlpError(f"DlpJob {name} not found.", "NOT_FOUND")
            return dlp_v2.DlpJob(self._jobs[name])

    def list(self, request):
        from google.cloud import dlp_v2

        parse_parent(request.parent)
        if request.filter:
            raise DlpError("Filters on list_dlp_jobs are not available on the local Sensitive "
                           "Data Protection; they run with LAB_BACKEND=gcp.", "UNIMPLEMENTED")
        with self._lock:
            jobs = [dlp_v2.DlpJob(j) for n, j in self._jobs.items()
                    if n.startswith(request.parent + "/dlpJobs/")
                    and (not request.type_ or j.type_ == request.type_)]
        jobs.sort(key=lambda j: j.create_time, reverse=True)
        size = request.page_size or 100
        start = int(request.page_token or 0) if (request.page_token or "0").isdigit() else None
        if start is None:
            raise DlpError("Invalid page_token.")
        return dlp_v2.ListDlpJobsResponse(
            jobs=jobs[start:start + size],
            next_page_token=str(start + size) if start + size < len(jobs) else "")

    def delete(self, name: str) -> None:
        with self._lock:
            if name not in self._jobs:
                raise DlpError(f"DlpJob {name} not found.", "NOT_FOUND")
            del self._jobs[name]
            self._save()

    def cancel(self, name: str) -> None:
        from google.cloud import dlp_v2

        with self._lock:
            job = self._jobs.get(name)
            if job is None:
                raise DlpError(f"DlpJob {name} not found.", "NOT_FOUND")
            if job.state not in (dlp_v2.DlpJob.JobState.PENDING,
                                 dlp_v2.DlpJob.JobState.RUNNING):
                raise DlpError(f"DlpJob {name} is {job.state.name} and can no longer be "
                               f"canceled.", "FAILED_PRECONDITION")
            job.state = dlp_v2.DlpJob.JobState.CANCELED
            job.end_time = _now()
            self._save()

    # ---- running
    def _check(self, config) -> None:
        from google.cloud import dlp_v2

        storage = dlp_v2.StorageConfig.pb(config.storage_config).WhichOneof("type")
        if storage is None:
            raise DlpError("InspectJobConfig.storage_config must name the data to inspect.")
        if storage != "big_query_options":
            raise DlpError(f"{storage} is not available on the local Sensitive Data "
                           f"Protection (BigQuery tables are); it runs with LAB_BACKEND=gcp.",
                           "UNIMPLEMENTED")
        ref = config.storage_config.big_query_options.table_reference
        if not (ref.project_id and ref.dataset_id and ref.table_id):
            raise DlpError("BigQueryOptions.table_reference must set project_id, dataset_id "
                           "and table_id.")
        if config.inspect_template_name:
            raise DlpError("Inspect templates are not available on the local Sensitive Data "
                           "Protection; they run with LAB_BACKEND=gcp.", "UNIMPLEMENTED")
        inspection.detectors_for(config.inspect_config)  # unknown infoTypes, bad regexes
        for action in config.actions:
            kind = dlp_v2.Action.pb(action).WhichOneof("action")
            if kind != "save_findings":
                raise DlpError(f"The {kind} action is not available on the local Sensitive "
                               f"Data Protection; it runs with LAB_BACKEND=gcp.",
                               "UNIMPLEMENTED")
            table = action.save_findings.output_config.table
            if not (table.project_id and table.dataset_id):
                raise DlpError("SaveFindings output_config.table must set project_id and "
                               "dataset_id.")
            if action.save_findings.output_config.output_schema:  # never ignored silently
                raise DlpError(gcp_only_message("OutputStorageConfig.output_schema",
                                                "Sensitive Data Protection"), "UNIMPLEMENTED")

    def _update(self, name: str, change) -> bool:
        with self._lock:
            job = self._jobs.get(name)
            if job is None or job.state == job.JobState.CANCELED:
                return False
            change(job)
            self._save()
            return True

    def _run(self, name: str, project: str) -> None:
        from google.cloud import dlp_v2

        def start(job):
            job.state = dlp_v2.DlpJob.JobState.RUNNING
            job.start_time = _now()

        if not self._update(name, start):
            return
        config = self.get(name).inspect_details.requested_options.job_config
        try:
            processed, stats, findings = self._inspect_table(config, name)
            for action in config.actions:
                self._save_findings(action.save_findings.output_config.table, findings, name,
                                    config.inspect_config.include_quote)
        except Exception as e:  # DLP's refusal, or BigQuery's (a missing table, a bad query)
            message = getattr(e, "message", None) or str(e)
            self._update(name, lambda job: self._fail(job, message))
            return

        def done(job):
            job.state = dlp_v2.DlpJob.JobState.DONE
            job.end_time = _now()
            job.inspect_details.result = dlp_v2.InspectDataSourceDetails.Result(
                processed_bytes=processed, total_estimated_bytes=processed,
                info_type_stats=[dlp_v2.InfoTypeStats(info_type=dlp_v2.InfoType(name=n),
                                                      count=c) for n, c in stats.items()])
        self._update(name, done)

    def _inspect_table(self, config, job_name: str):
        from google.cloud import dlp_v2

        options = config.storage_config.big_query_options
        ref = options.table_reference
        client = self.bigquery.client()
        table = client.get_table(f"{ref.project_id}.{ref.dataset_id}.{ref.table_id}")
        columns = [f.name for f in table.schema]
        wanted = [f.name for f in options.identifying_fields]
        selected = [f.name for f in options.included_fields] or columns
        excluded = {f.name for f in options.excluded_fields}
        for name in [*selected, *wanted]:
            if name not in columns:
                raise DlpError(f"Field {name} is not in table {table.full_table_id}.")
        inspected = [c for c in selected if c not in excluded]
        limit, start = options.rows_limit or None, 0
        if options.rows_limit_percent:
            if not 0 < options.rows_limit_percent <= 100:
                raise DlpError("rows_limit_percent must be between 1 and 100.")
            limit = max(1, table.num_rows * options.rows_limit_percent // 100)
        if limit and options.sample_method == dlp_v2.BigQueryOptions.SampleMethod.RANDOM_START:
            start = random.randrange(max(table.num_rows - limit, 0) + 1)
        rows = client.list_rows(table, max_results=limit, start_index=start or None)
        stats: dict[str, int] = {}
        findings, processed = [], 0
        batch: list = []

        texts, ids = {}, {}

        def flush():
            nonlocal processed
            values = [(text, row, column) for row, cells in batch for column, text in cells]
            processed += sum(len(text.encode()) for text, _, _ in values)
            matches, _ = inspection.find(config.inspect_config, values, limited=False)
            texts.update({(row, column): text for text, row, column in values})
            findings.extend(matches)
            batch.clear()

        for number, row in enumerate(rows, start=start):
            batch.append((number, [(c, "" if row[c] is None else str(row[c]))
                                   for c in inspected]))
            ids[number] = ["" if row[c] is None else str(row[c]) for c in wanted]
            if len(batch) >= _CHUNK_ROWS:
                flush()
        flush()
        kept, _ = inspection.limit(config.inspect_config, findings, cap=None)
        for m in kept:
            stats[m.info_type] = stats.get(m.info_type, 0) + 1
        return processed, stats, [(m, texts[(m.row, m.column)], ref, ids[m.row]) for m in kept]

    def _save_findings(self, output, findings, job_name: str, include_quote: bool) -> None:
        from google.api_core import exceptions
        from google.cloud import bigquery

        client = self.bigquery.client()
        table_id = output.table_id or f"dlp_googleapis_{datetime.date.today():%Y_%m_%d}_" \
                                      f"{random.randrange(10**9)}"
        full = f"{output.project_id}.{output.dataset_id}.{table_id}"
        try:
            table = client.get_table(full)
        except exceptions.NotFound:
            table = client.create_table(bigquery.Table(full, schema=_findings_schema()))
        now = _now().isoformat()
        rows = []
        for m, text, ref, id_values in findings:
            start_byte = len(text[:m.start].encode())
            rows.append({
                "quote": text[m.start:m.end] if include_quote else None,
                "info_type": {"name": m.info_type},
                "likelihood": _likelihood_name(m.likelihood),
                "location": {
                    "byte_range": {"start": start_byte,
                                   "end": start_byte + len(text[m.start:m.end].encode())},
                    "codepoint_range": {"start": m.start, "end": m.end},
                    "content_locations": [{
                        "container_name": f"{ref.project_id}:{ref.dataset_id}.{ref.table_id}",
                        "record_location": {
                            # with identifying_fields, a row is named by their values
                            "record_key": {"id_values": id_values} if id_values else {
                                "big_query_key": {
                                    "table_reference": {"project_id": ref.project_id,
                                                        "dataset_id": ref.dataset_id,
                                                        "table_id": ref.table_id},
                                    "row_number": m.row}},
                            "field_id": {"name": m.column}}}]},
                "create_time": now, "job_name": job_name,
                "finding_id": f"{random.getrandbits(63)}"})
        if rows:
            job = client.load_table_from_json(rows, table, job_config=bigquery.LoadJobConfig(
                schema=table.schema, write_disposition="WRITE_APPEND"))
            job.result()


def _likelihood_name(value: int) -> str:
    from google.cloud import dlp_v2

    return dlp_v2.Likelihood(value).name


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
