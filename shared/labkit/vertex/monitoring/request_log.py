"""What endpoints served, written off the predict path by one background thread.

Two sinks:
- the monitoring record: vertex/monitoringTraffic/<job_id>.jsonl, one line per instance
  {"t": epoch seconds, "d": deployedModelId, "i": instance, "p": prediction}; analysis
  reads it, so it needs no BigQuery round trip;
- BigQuery tables in the layout Vertex AI uses for request-response logging (one row per
  request): endpoint STRING, deployed_model_id STRING, logging_time TIMESTAMP,
  request_id NUMERIC, request_payload REPEATED STRING (one JSON instance each),
  response_payload REPEATED STRING (one JSON prediction each). Rows go in through the real
  BigQuery client (tabledata.insertAll) against the local BigQuery in this same process,
  as any client would; datasets and tables are created on first use.
The predict path only puts a tuple on a queue; a failure in a sink is printed to the
services log and never reaches the caller.
"""

from __future__ import annotations

import json
import queue
import random
import sys
import threading
import time
from datetime import UTC, datetime

from labkit.services.files import write_atomic
from labkit.workspace import Workspace

BQ_SCHEMA = [("endpoint", "STRING", "NULLABLE"), ("deployed_model_id", "STRING", "NULLABLE"),
             ("logging_time", "TIMESTAMP", "NULLABLE"), ("request_id", "NUMERIC", "NULLABLE"),
             ("request_payload", "STRING", "REPEATED"),
             ("response_payload", "STRING", "REPEATED")]
BATCH_WAIT_S = 0.2


class RequestLog:
    def __init__(self, workspace: Workspace, bigquery=None):
        self.folder = workspace.root / "vertex" / "monitoringTraffic"
        self.bigquery = bigquery  # labkit.vertex.bq.LocalBigQuery; None: no BigQuery logging
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.pending = 0
        self.idle = threading.Condition()
        self.tables: set[str] = set()
        self.thread: threading.Thread | None = None
        self.start_lock = threading.Lock()
        self.file_lock = threading.Lock()  # appends and prune() never interleave

    # ---- the predict path
    def traffic(self, job_id: str, deployed_model_id: str, instances: list,
                predictions: list) -> None:
        self._put(("traffic", job_id, time.time(), deployed_model_id, instances, predictions))

    def bigquery_row(self, table: str, endpoint: str, deployed_model_id: str, instances: list,
                     predictions: list) -> None:
        if self.bigquery:
            self._put(("bq", table, time.time(), endpoint, deployed_model_id, instances,
                       predictions))

    def _put(self, item: tuple) -> None:
        with self.idle:
            self.pending += 1
        self.queue.put(item)
        if self.thread is None:
            with self.start_lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._run, daemon=True,
                                                   name="request-log")
                    self.thread.start()

    # ---- readers
    def flush(self, timeout: float = 30.0) -> bool:
        """Waits until everything queued so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.idle:
            while self.pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.idle.wait(left)
        return True

    def read(self, job_id: str, start: float, end: float) -> list[dict]:
        """Traffic lines of a job with start < t <= end."""
        path = self.folder / f"{job_id}.jsonl"
        if not path.exists():
            return []
        wanted = []
        for line in path.read_text().splitlines():
            # lines start with {"t": <time>, ...}: filter before parsing; one json.loads of
            # the kept lines is far faster than one per line
            try:
                t = float(line[6:line.index(",", 6)])
            except ValueError:
                continue  # a line cut short by a crash
            if start < t <= end and line.endswith("}"):
                wanted.append(line)
        try:
            return json.loads("[" + ",".join(wanted) + "]")
        except ValueError:
            return [e for e in map(_parse, wanted) if e is not None]

    def prune(self, job_id: str, before: float) -> None:
        """Drops the lines with t <= before (analysed windows: their statistics are kept)."""
        path = self.folder / f"{job_id}.jsonl"
        with self.file_lock:
            if not path.exists():
                return
            kept = []
            for line in path.read_text().splitlines():
                try:
                    if float(line[6:line.index(",", 6)]) > before:
                        kept.append(line + "\n")
                except ValueError:
                    continue
            write_atomic(path, "".join(kept))

    def forget(self, job_id: str) -> None:
        self.flush(5)
        (self.folder / f"{job_id}.jsonl").unlink(missing_ok=True)

    # ---- the writer thread
    def _run(self) -> None:
        while True:
            batch = [self.queue.get()]
            deadline = time.monotonic() + BATCH_WAIT_S
            while time.monotonic() < deadline:
                try:
                    batch.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 - logging must never stop serving
                print(f"request-response logging failed: {type(exc).__name__}: {exc}",
                      file=sys.stderr, flush=True)
            with self.idle:
                self.pending -= len(batch)
                self.idle.notify_all()

    def _write(self, batch: list[tuple]) -> None:
        lines: dict[str, list[str]] = {}
        rows: dict[str, list[dict]] = {}
        for item in batch:
            if item[0] == "traffic":
                _, job_id, t, deployed, instances, predictions = item
                out = lines.setdefault(job_id, [])
                for instance, prediction in zip(instances, predictions, strict=False):
                    out.append(json.dumps({"t": t, "d": deployed, "i": instance,
                                           "p": prediction}) + "\n")
            else:
                _, table, t, endpoint, deployed, instances, predictions = item
                rows.setdefault(table, []).append({
                    "endpoint": endpoint, "deployed_model_id": deployed,
                    "logging_time": datetime.fromtimestamp(t, UTC).isoformat(),
                    "request_id": random.SystemRandom().randint(10**17, 9 * 10**17),
                    "request_payload": [json.dumps(i) for i in instances],
                    "response_payload": [json.dumps(p) for p in predictions]})
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.file_lock:
            for job_id, text in lines.items():
                with open(self.folder / f"{job_id}.jsonl", "a") as f:
                    f.write("".join(text))
        for table, table_rows in rows.items():
            self._insert(table, table_rows)

    def _insert(self, table: str, table_rows: list[dict]) -> None:
        from google.cloud import bigquery

        bq = self.bigquery.client()
        if table not in self.tables:
            project, dataset, _ = table.split(".")
            bq.create_dataset(bigquery.Dataset(f"{project}.{dataset}"), exists_ok=True)
            schema = [bigquery.SchemaField(n, t, mode=m) for n, t, m in BQ_SCHEMA]
            bq.create_table(bigquery.Table(table, schema=schema), exists_ok=True)
            self.tables.add(table)
        errors = bq.insert_rows_json(table, table_rows)
        if errors:
            raise RuntimeError(f"insertAll into {table}: {errors[:3]}")


def _parse(line: str) -> dict | None:
    try:
        return json.loads(line)
    except ValueError:
        return None
