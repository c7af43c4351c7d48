"""Copy jobs: copy, snapshot, clone and restore tables, with BigQuery's dispositions. One
transaction each (Warehouse.write): a failing copy leaves the destination as it was.

A snapshot is a read-only table (type SNAPSHOT, snapshotDefinition) that keeps the source's
rows as they were; a clone is a writable copy (cloneDefinition); a restore copies a
snapshot back into a standard table. Copy jobs default to WRITE_EMPTY.
https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#jobconfigurationtablecopy
https://cloud.google.com/bigquery/docs/table-snapshots-intro
https://cloud.google.com/bigquery/docs/table-clones-intro
"""

from __future__ import annotations

from labkit.bigquery.errors import access_denied, duplicate, invalid, not_found
from labkit.bigquery.sql.translate import PUBLIC_PROJECT
from labkit.bigquery.warehouse import Warehouse, now_ms

OPERATIONS = ("COPY", "SNAPSHOT", "CLONE", "RESTORE")
_DERIVED = ("snapshotDefinition", "cloneDefinition")  # what a copy's source was


def is_snapshot(wh: Warehouse, project: str, dataset: str, table: str) -> bool:
    return "snapshotDefinition" in wh.table_meta(project, dataset, table)


def refuse_snapshot_writes(wh: Warehouse, project: str, dataset: str, table: str) -> None:
    """Table snapshots are read-only."""
    if is_snapshot(wh, project, dataset, table):
        raise invalid(f"Cannot modify the table snapshot {project}:{dataset}.{table}: "
                      "table snapshots are read-only")


def _ref(ref: dict | None, project: str) -> tuple[str, str, str]:
    ref = ref or {}
    if not ref.get("datasetId") or not ref.get("tableId"):
        raise invalid("Copy configuration must name its tables with datasetId and tableId")
    return ref.get("projectId") or project, ref["datasetId"], ref["tableId"]


def run_copy(wh: Warehouse, copy: dict, project: str) -> dict:
    """Runs configuration.copy; returns statistics.copy."""
    sources = copy.get("sourceTables") or ([copy["sourceTable"]] if copy.get("sourceTable")
                                           else [])
    if not sources:
        raise invalid("Copy configuration must specify sourceTable or sourceTables")
    sources = [_ref(s, project) for s in sources]
    dest = _ref(copy.get("destinationTable"), project)
    operation = (copy.get("operationType") or "COPY").upper()
    if operation not in OPERATIONS:
        raise invalid(f"Invalid operationType: {operation}; use one of {', '.join(OPERATIONS)}")
    write = (copy.get("writeDisposition") or "WRITE_EMPTY").upper()
    create = (copy.get("createDisposition") or "CREATE_IF_NEEDED").upper()
    if dest[0] == PUBLIC_PROJECT:
        raise access_denied(f"Table {dest[0]}:{dest[1]}.{dest[2]}: the public datasets are "
                            "read-only.")
    for p, d, t in sources:
        if not wh.dataset_exists(p, d) or not wh.table_kind(p, d, t):
            raise not_found("Table", f"{p}:{d}.{t}")
        if wh.table_kind(p, d, t) == "VIEW":
            raise invalid(f"Cannot copy {p}:{d}.{t}: it is a view")
    if operation in ("SNAPSHOT", "CLONE", "RESTORE") and len(sources) != 1:
        raise invalid(f"A {operation} copy takes exactly one source table")
    if operation == "RESTORE" and not is_snapshot(wh, *sources[0]):
        raise invalid(f"Cannot restore from {sources[0][0]}:{sources[0][1]}.{sources[0][2]}: "
                      "it is not a table snapshot")
    if operation == "SNAPSHOT" and is_snapshot(wh, *sources[0]):
        raise invalid("The source of a snapshot must be a standard table, not a snapshot")
    if not wh.dataset_exists(dest[0], dest[1]):
        raise not_found("Dataset", f"{dest[0]}:{dest[1]}")
    if dest in sources:
        raise invalid("The destination table of a copy cannot be one of its sources")
    name = f"{dest[0]}:{dest[1]}.{dest[2]}"
    target = wh.ref(*dest)
    union = " UNION ALL BY NAME ".join(f"SELECT * FROM {wh.ref(*s)}" for s in sources)
    with wh.write() as cur:
        exists = wh.table_kind(*dest)
        if exists == "VIEW":
            raise invalid(f"Cannot copy into {name}: it is a view")
        if exists and operation in ("SNAPSHOT", "CLONE") and write != "WRITE_EMPTY":
            raise invalid(f"A {operation} copy needs writeDisposition WRITE_EMPTY")
        if exists and (write == "WRITE_EMPTY" or operation == "SNAPSHOT"):
            raise duplicate("Table", name)
        if exists:
            refuse_snapshot_writes(wh, *dest)
        if not exists and create == "CREATE_NEVER":
            raise not_found("Table", name)
        if exists and write == "WRITE_APPEND":
            cur.execute(f"INSERT INTO {target} BY NAME {union}")
            meta = wh.table_meta(*dest)
        else:
            cur.execute(f"CREATE OR REPLACE TABLE {target} AS {union}")
            source_meta = wh.table_meta(*sources[0])
            meta = {k: v for k, v in (wh.table_meta(*dest) if exists else {}).items()
                    if k not in _DERIVED}
            if source_meta.get("schema"):
                meta["schema"] = source_meta["schema"]
            base = {"baseTableReference": {"projectId": sources[0][0],
                                           "datasetId": sources[0][1],
                                           "tableId": sources[0][2]}}
            if operation == "SNAPSHOT":
                meta["snapshotDefinition"] = {**base, "snapshotTime": _rfc3339(now_ms())}
            elif operation == "CLONE":
                meta["cloneDefinition"] = {**base, "cloneTime": _rfc3339(now_ms())}
        if copy.get("destinationExpirationTime"):
            meta["expirationTime"] = str(_expiration_ms(copy["destinationExpirationTime"]))
        stamp = now_ms()
        meta["lastModifiedTime"] = stamp
        if not exists:
            meta["creationTime"] = stamp
        wh.set_table_meta(cur, *dest, meta)
        rows = wh.num_rows(*dest)
    size = sum(wh.column_bytes(*dest).values())
    return {"copiedRows": str(rows), "copiedLogicalBytes": str(size)}


def _rfc3339(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def _expiration_ms(value) -> int:
    """destinationExpirationTime: an RFC 3339 timestamp (the client sends a string)."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"Invalid destinationExpirationTime: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    ms = int(when.timestamp() * 1000)
    if ms <= now_ms():
        raise invalid(f"Invalid destinationExpirationTime: {value} is in the past")
    return ms

