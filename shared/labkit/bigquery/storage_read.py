"""The BigQuery Storage Read API: google.cloud.bigquery.storage.v1.BigQueryRead over gRPC.

google-cloud-bigquery's to_dataframe() / to_arrow() (and %%bigquery, pandas-gbq with
use_bqstorage_api=True, BigQuery DataFrames) read a table, or a query's destination table,
through BigQueryReadClient: CreateReadSession names the table, the columns
(selected_fields) and a row_restriction; ReadRows streams Arrow record batches (or Avro
rows) of one stream of the session; SplitReadStream cuts a stream in two. The client calls
bigquerystorage.googleapis.com over gRPC with no endpoint switch in the environment, so the
proxy routes that host to the TLS gRPC server this room starts (services.grpc_server: the
workspace CA's certificate, the workspace token checked), as for Sensitive Data Protection.

A session is a snapshot: its rows are read once, at CreateReadSession (through the local
BigQuery's SQL engine, so a row restriction is BigQuery SQL, translated as queries are),
and its streams are contiguous row ranges of that snapshot. Sessions live in this process,
the newest SESSIONS_KEPT of them, for at most six hours as on BigQuery.

Google's reference: https://cloud.google.com/bigquery/docs/reference/storage/rpc/
google.cloud.bigquery.storage.v1 (max_stream_count: "a default system max limit of 1,000",
at least preferred_min_stream_count; row_restriction: "SQL text filtering statement, similar
to a WHERE clause in a query. Aggregates are not supported", at most 1 MiB).
"""

from __future__ import annotations

import datetime
import io
import math
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from labkit.bigquery.errors import BigQueryError
from labkit.services.http import gcp_only_message

HOST = "bigquerystorage.googleapis.com"
SERVICE = "google.cloud.bigquery.storage.v1.BigQueryRead"
PRODUCT = "BigQuery Storage Read API"
MAX_STREAMS = 1000  # BigQuery's system limit on max_stream_count
DEFAULT_MAX_STREAMS = 4  # what the server picks when max_stream_count is 0 (unset)
ROWS_PER_STREAM = 250_000  # ... one stream per this many rows, up to DEFAULT_MAX_STREAMS
BATCH_BYTES = 8 * 1024 * 1024  # uncompressed Arrow bytes per ReadRows response, about
MAX_RESTRICTION_BYTES = 1024 * 1024
SESSION_HOURS = 6
SESSIONS_KEPT = 32
_TABLE = re.compile(r"^projects/(?P<project>[^/]+)/datasets/(?P<dataset>[^/]+)"
                    r"/tables/(?P<table>[^/]+)$")
_PARENT = re.compile(r"^projects/(?P<project>[^/]+)$")
# BigQuery's error reasons -> gRPC status codes (google.rpc.Code names)
_CODES = {"notFound": "NOT_FOUND", "accessDenied": "PERMISSION_DENIED",
          "notImplemented": "UNIMPLEMENTED", "duplicate": "ALREADY_EXISTS"}


class StorageReadError(Exception):
    """code: a grpc.StatusCode name."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _invalid(message: str) -> StorageReadError:
    return StorageReadError("INVALID_ARGUMENT", message)


def _not_local(feature: str) -> StorageReadError:
    return StorageReadError("UNIMPLEMENTED", gcp_only_message(feature, PRODUCT))


def _from_bigquery(exc: BigQueryError, restriction: bool = False) -> StorageReadError:
    code = _CODES.get(exc.reason, "INVALID_ARGUMENT")
    if code == "INVALID_ARGUMENT":
        # BigQuery's wording for a read whose filter fails as SQL, e.g. "request failed:
        # Query error: Cannot query over table ... without a filter ..." (seen in
        # GoogleCloudPlatform/DataflowTemplates#2273)
        # (the position BigQuery's message gives is in the query made here, not the
        # caller's text: left out)
        message = re.sub(r" at \[\d+:\d+\]$", "", exc.message)
        return _invalid(f"request failed: Query error: {message}" if restriction
                        else message)
    return StorageReadError(code, exc.message)


# --- BigQuery types as the Read API sends them ---------------------------------------------

def arrow_type(f: dict) -> pa.DataType:
    """The Arrow type BigQuery's Read API uses for one TableFieldSchema."""
    kind = (f.get("type") or "STRING").upper()
    if kind in ("RECORD", "STRUCT"):
        inner = pa.struct([arrow_field(s) for s in f.get("fields") or []])
    elif kind == "RANGE":  # a struct of its bounds, as the Read API sends it
        from labkit.bigquery.schema import range_element

        bound = arrow_type({"type": range_element(f)})
        inner = pa.struct([("start", bound), ("end", bound)])
    else:
        inner = {"INTEGER": pa.int64(), "INT64": pa.int64(), "FLOAT": pa.float64(),
                 "FLOAT64": pa.float64(), "BOOLEAN": pa.bool_(), "BOOL": pa.bool_(),
                 "STRING": pa.string(), "BYTES": pa.binary(), "DATE": pa.date32(),
                 "DATETIME": pa.timestamp("us"), "TIMESTAMP": pa.timestamp("us", tz="UTC"),
                 "TIME": pa.time64("us"), "NUMERIC": pa.decimal128(38, 9),
                 "BIGNUMERIC": pa.decimal256(76, 38), "GEOGRAPHY": pa.string(),
                 "JSON": pa.string(), "INTERVAL": pa.month_day_nano_interval(),
                 }.get(kind, pa.string())
    return pa.list_(inner) if (f.get("mode") or "").upper() == "REPEATED" else inner


def arrow_field(f: dict) -> pa.Field:
    kind = (f.get("type") or "").upper()
    # BigQuery marks the types Arrow has no name for with an extension name (GEOGRAPHY also
    # with its encoding), as google-cloud-bigquery labels the REST API's rows
    metadata = ({b"ARROW:extension:name": f"google:sqlType:{kind.lower()}".encode()}
                if kind in ("GEOGRAPHY", "JSON", "DATETIME") else None)
    if kind == "GEOGRAPHY":
        from labkit.bigquery.geography import ARROW_METADATA

        metadata = ARROW_METADATA
    return pa.field(f["name"], arrow_type(f), (f.get("mode") or "").upper() != "REQUIRED",
                    metadata=metadata)


def _cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    """One column as the Read API types it. A marked STRUCT (schema.marked: a type DuckDB
    has none of, e.g. BIGNUMERIC as its text) gives its one field; lists and RECORDs are
    cast member by member."""
    kind = array.type
    if pa.types.is_interval(target) and pa.types.is_struct(kind):  # parts (arrow_rows)
        return _intervals(array)
    kind = array.type
    if pa.types.is_struct(kind) and kind.num_fields == 1 and \
            kind.field(0).name.startswith("bq$") and not pa.types.is_struct(target):
        value = pc.struct_field(array, [0])
        if pa.types.is_timestamp(target) and pa.types.is_string(value.type):
            # picoseconds as text (timestamp_picos): truncated to microseconds, as BigQuery
            # sends them unless asked for TIMESTAMP_PRECISION_PICOS
            value = pc.utf8_slice_codeunits(value, 0, 26).cast(pa.timestamp("us"))
        return pc.if_else(array.is_null(), pa.nulls(len(array), target),
                          _cast(value, target))
    if pa.types.is_list(kind) and pa.types.is_list(target):
        values = _cast(array.flatten(), target.value_type)
        return pa.ListArray.from_arrays(array.offsets, values, type=target,
                                        mask=array.is_null())
    if pa.types.is_struct(kind) and pa.types.is_struct(target) and kind != target:
        children = [_cast(pc.struct_field(array, [i]), target.field(i).type)
                    for i in range(target.num_fields)]
        return pa.StructArray.from_arrays(children, fields=list(target),
                                          mask=array.is_null())
    return array.cast(target)


_NANOS_MAX = 2 ** 63 - 1


def _intervals(array: pa.Array) -> pa.Array:
    """INTERVALs from their marked parts (months, days, microseconds) as month_day_nano; one
    of more time than Arrow's nanoseconds hold (106,751 days) cannot be sent."""
    values = []
    for item in array.to_pylist():
        parts = None if item is None else next(iter(item.values()))
        if parts is not None and abs(parts["micros"]) * 1000 > _NANOS_MAX:
            raise _invalid("An INTERVAL with more than 106751 days of hours, minutes and "
                           "seconds cannot be read as Arrow")
        values.append(None if parts is None else
                      pa.scalar((parts["months"], parts["days"], parts["micros"] * 1000),
                                pa.month_day_nano_interval()).as_py())
    return pa.array(values, pa.month_day_nano_interval())


def _conform(table: pa.Table, fields: list[dict]) -> pa.Table:
    schema = pa.schema([arrow_field(f) for f in fields])
    if table.schema.equals(schema, check_metadata=True):
        return table
    columns = [pa.chunked_array([_cast(chunk, target.type) for chunk in column.chunks],
                                target.type)
               for column, target in zip(table.columns, schema, strict=True)]
    return pa.Table.from_arrays(columns, schema=schema)


def avro_schema(fields: list[dict], name: str = "__root__") -> dict:
    """The Avro schema of BigQuery's Read API for these fields (nullable columns as unions
    with null, REPEATED as arrays; DATETIME as a string, as BigQuery writes it)."""
    def of(f: dict, path: str):
        kind = (f.get("type") or "STRING").upper()
        if kind in ("RECORD", "STRUCT"):
            base = {"type": "record", "name": path,
                    "fields": [{"name": s["name"], "type": of(s, f"{path}__{s['name']}")}
                               for s in f.get("fields") or []]}
        else:
            base = {
                "INTEGER": "long", "INT64": "long", "FLOAT": "double", "FLOAT64": "double",
                "BOOLEAN": "boolean", "BOOL": "boolean", "STRING": "string", "BYTES": "bytes",
                "DATE": {"type": "int", "logicalType": "date"},
                "DATETIME": {"type": "string", "sqlType": "DATETIME"},
                "TIMESTAMP": {"type": "long", "logicalType": "timestamp-micros"},
                "TIME": {"type": "long", "logicalType": "time-micros"},
                "NUMERIC": {"type": "bytes", "logicalType": "decimal", "precision": 38,
                            "scale": 9},
                "BIGNUMERIC": {"type": "bytes", "logicalType": "decimal", "precision": 77,
                               "scale": 38},
                "GEOGRAPHY": {"type": "string", "sqlType": "GEOGRAPHY"},
                "JSON": {"type": "string", "sqlType": "JSON"},
            }.get(kind)
            if base is None:
                raise _not_local(f"Reading {kind} columns in AVRO format")
        mode = (f.get("mode") or "NULLABLE").upper()
        if mode == "REPEATED":
            return {"type": "array", "items": base}
        return base if mode == "REQUIRED" else ["null", base]

    return {"type": "record", "name": name,
            "fields": [{"name": f["name"], "type": of(f, f["name"])} for f in fields]}


def _avro_values(rows: list[dict], fields: list[dict]) -> list[dict]:
    """DATETIME values (at any depth) as the strings BigQuery's Avro carries, BIGNUMERIC
    text as decimals."""
    def value(v, f: dict, repeated: bool):
        if v is None:
            return None
        if repeated:
            return [value(item, f, False) for item in v]
        kind = (f.get("type") or "").upper()
        if isinstance(v, dict) and len(v) == 1 and next(iter(v)).startswith("bq$"):
            v = next(iter(v.values()))  # a marked STRUCT (schema.marked) holds the value
            if kind == "BIGNUMERIC":  # as its text
                import decimal

                return decimal.Decimal(v)
            if kind == "TIMESTAMP":  # picoseconds as text: truncated to microseconds
                return datetime.datetime.strptime(v[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(
                    tzinfo=datetime.UTC)
        if kind == "DATETIME":
            return v.isoformat()
        if kind in ("RECORD", "STRUCT"):
            return {s["name"]: value(v.get(s["name"]), s,
                                     (s.get("mode") or "").upper() == "REPEATED")
                    for s in f.get("fields") or []}
        return v

    root = {"type": "RECORD", "fields": fields}
    return [value(row, root, False) for row in rows]


# --- what a session reads ------------------------------------------------------------------

def _predicate(restriction: str) -> str | None:
    """The row restriction as one BigQuery SQL expression (re-rendered from its parse, so
    nothing but that expression reaches the engine); no subqueries, no aggregates."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    if not restriction.strip():
        return None
    try:
        trees = [t for t in sqlglot.parse(restriction, read="bigquery") if t is not None]
    except (ParseError, TokenError) as exc:
        raise _invalid(f"request failed: Query error: Syntax error in row_restriction: "
                       f"{str(exc).splitlines()[0]}") from None
    if len(trees) != 1 or isinstance(trees[0], (exp.Query, exp.DDL, exp.DML, exp.Command)):
        raise _invalid("request failed: row_restriction must be one SQL filter expression "
                       "(like a WHERE clause), not a statement.")
    tree = trees[0]
    if tree.find(exp.Query, exp.Subquery):
        raise _invalid("request failed: Subqueries are not supported in row_restriction.")
    if tree.find(exp.AggFunc, exp.Window):
        raise _invalid("request failed: Aggregate and analytic functions are not supported "
                       "in row_restriction.")
    return tree.sql(dialect="bigquery")


def _pick(names: list[str], columns: list[str]) -> list[str]:
    """The selected columns in the table's order: "The order of the fields in the read
    session schema is derived from the table schema and does not correspond to the order in
    which the fields are specified in this list" (TableReadOptions.selected_fields in the
    reference above). BigQuery column names ignore case."""
    if not columns:
        return list(names)
    by_lower = {n.lower(): n for n in names}
    missing = [c for c in columns if c.lower() not in by_lower]
    if missing:
        raise _invalid("request failed: The following selected fields do not exist in the "
                       f"table schema: {', '.join(missing)}")
    chosen = {c.lower() for c in columns}
    return [n for n in names if n.lower() in chosen]


def table_source(engine, warehouse, anonymous):
    """source() for ReadSessions over the local BigQuery: a table (or view) through the SQL
    engine; a query's anonymous destination table from `anonymous(project, dataset, table)`
    (its engine.Result, or None)."""
    from labkit.bigquery import ids
    from labkit.bigquery.engine import duck_error
    from labkit.bigquery.errors import not_found
    from labkit.bigquery.schema import quote
    from labkit.bigquery.sql.translate import Scope, expression_to_duckdb

    def source(project, dataset, table, columns, restriction, as_of=None):
        ids.project(project), ids.dataset(dataset), ids.table(table)
        if "$" in table or "@" in table:
            raise _not_local("Reading a partition or snapshot decorator")
        predicate = _predicate(restriction)
        result = anonymous(project, dataset, table)
        if result is not None:
            names = _pick(result.table.column_names, columns)
            by_name = {f["name"]: f for f in result.fields}
            if predicate is None:
                return result.table.select(names), [by_name[n] for n in names]
            import duckdb

            cursor = warehouse.cursor()
            view = f"__read_{threading.get_ident()}"
            cursor.register(view, result.table)
            try:
                where = expression_to_duckdb(predicate, Scope(project, dataset, warehouse))
                picked = cursor.sql(f"SELECT {', '.join(quote(n) for n in names)} "
                                    f"FROM {view} WHERE {where}").to_arrow_table()
            except duckdb.Error as exc:
                raise duck_error(exc) from exc
            finally:
                cursor.unregister(view)
            return picked, [by_name[n] for n in names]
        if warehouse.table_kind(project, dataset, table) is None:
            if not warehouse.dataset_exists(project, dataset):
                raise not_found("Dataset", f"{project}:{dataset}")
            raise not_found("Table", f"{project}:{dataset}.{table}")
        changed = int(warehouse.table_meta(project, dataset, table).get("lastModifiedTime")
                      or 0)
        if as_of is not None and as_of < changed:
            # a snapshot at or after the last change is the table as it is (BigQuery
            # DataFrames reads so); before it needs history the local BigQuery does not keep
            raise _not_local("Reading a table at a snapshot_time before its last change "
                             "(time travel)")
        names = _pick(warehouse.columns(project, dataset, table)[0], columns)
        sql = (f"SELECT {', '.join('`' + n + '`' for n in names)} "
               f"FROM `{project}.{dataset}.{table}`"
               + (f" WHERE {predicate}" if predicate else ""))
        read = engine.run(sql, project=project)
        return read.table, read.fields

    return source


# --- sessions -------------------------------------------------------------------------------

@dataclass
class _Session:
    name: str
    table: pa.Table
    fields: list[dict]
    data_format: str  # "ARROW" | "AVRO"
    compression: str | None  # pyarrow's codec name for Arrow buffers
    expires: datetime.datetime
    streams: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> row range


class ReadSessions:
    """The sessions of one services process. `source(project, dataset, table, columns,
    restriction, as_of)` reads a snapshot -> (arrow table, fields) or raises BigQueryError
    (or StorageReadError);
    `location(project, dataset)` is where a dataset lives."""

    def __init__(self, source, location):
        self.source, self.location = source, location
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, parent: str, session, max_streams: int, min_streams: int):
        """session: a bigquery_storage_v1 ReadSession (the requested one). Returns
        (the session resource's parts, stream names)."""
        if not _PARENT.match(parent or ""):
            raise _invalid(f"Invalid parent: {parent!r}; expected projects/PROJECT_ID.")
        match = _TABLE.match(session.table or "")
        if not match:
            raise _invalid(f"Invalid table name: {session.table!r}; expected "
                           "projects/PROJECT_ID/datasets/DATASET_ID/tables/TABLE_ID.")
        if max_streams < 0 or min_streams < 0:
            raise _invalid("max_stream_count and preferred_min_stream_count must be "
                           "non-negative.")
        if max_streams > MAX_STREAMS:
            raise _invalid(f"max_stream_count {max_streams} is greater than the system "
                           f"limit of {MAX_STREAMS}.")
        if max_streams and min_streams > max_streams:
            raise _invalid(f"max_stream_count ({max_streams}) must be greater than or equal "
                           f"to preferred_min_stream_count ({min_streams}).")
        data_format = getattr(session.data_format, "name", "")
        if data_format not in ("ARROW", "AVRO"):
            raise _invalid("read_session.data_format must be ARROW or AVRO.")
        as_of = None  # ms since the epoch
        if "table_modifiers" in session and "snapshot_time" in session.table_modifiers:
            when = session.table_modifiers.snapshot_time
            as_of = when.timestamp() * 1000
        options = session.read_options
        compression = None
        if "arrow_serialization_options" in options:
            if data_format != "ARROW":
                raise _invalid("arrow_serialization_options need data_format ARROW.")
            codec = options.arrow_serialization_options.buffer_compression.name
            compression = {"LZ4_FRAME": "lz4", "ZSTD": "zstd"}.get(codec)
        if "avro_serialization_options" in options:
            if data_format != "AVRO":
                raise _invalid("avro_serialization_options need data_format AVRO.")
            if options.avro_serialization_options.enable_display_name_attribute:
                raise _not_local("Avro displayName attributes")
        for kind in ("arrow_serialization_options", "avro_serialization_options"):
            if kind in options and int(getattr(options, kind).picos_timestamp_precision) > 1:
                # picosecond TIMESTAMPs go out truncated to microseconds (the default, 1)
                raise _not_local("picos_timestamp_precision "
                                 f"{getattr(options, kind).picos_timestamp_precision.name}")
        if "sample_percentage" in options:
            raise _not_local("TableReadOptions.sample_percentage")
        if options.response_compression_codec:
            raise _not_local("TableReadOptions.response_compression_codec")
        restriction = options.row_restriction or ""
        if len(restriction.encode()) > MAX_RESTRICTION_BYTES:
            raise _invalid("read_session.read_options.row_restriction exceeded maximum "
                           f"allowed length. Maximum bytes allowed: {MAX_RESTRICTION_BYTES}")
        project, dataset, table_id = match["project"], match["dataset"], match["table"]
        columns = list(options.selected_fields)
        if any("." in c for c in columns):
            raise _not_local("Selecting nested fields (a.b) in selected_fields")
        try:
            table, fields = self.source(project, dataset, table_id, columns, restriction,
                                        as_of)
        except BigQueryError as exc:
            raise _from_bigquery(exc, restriction=bool(restriction)) from None
        table = _conform(table, fields)
        if data_format == "AVRO":
            avro_schema(fields)  # refuses types with no Avro form now, not in ReadRows
        location = (self.location(project, dataset) or "US").lower()
        name = f"projects/{project}/locations/{location}/sessions/{_id()}"
        now = datetime.datetime.now(datetime.UTC)
        state = _Session(name, table, fields, data_format, compression,
                         now + datetime.timedelta(hours=SESSION_HOURS))
        rows = table.num_rows
        wanted = max_streams or min(DEFAULT_MAX_STREAMS, math.ceil(rows / ROWS_PER_STREAM))
        count = min(max(wanted, min_streams), max_streams or MAX_STREAMS, rows)
        for i in range(count):  # contiguous, nearly equal ranges; no streams if no rows
            state.streams[f"{name}/streams/{_id()}"] = (rows * i // count,
                                                        rows * (i + 1) // count)
        with self._lock:
            self._sessions[name] = state
            while len(self._sessions) > SESSIONS_KEPT:
                self._sessions.popitem(last=False)
        return state

    def stream(self, name: str) -> tuple[_Session, tuple[int, int]]:
        session_name = (name or "").split("/streams/", 1)[0]
        with self._lock:
            state = self._sessions.get(session_name)
        if state is not None and state.expires < datetime.datetime.now(datetime.UTC):
            with self._lock:
                self._sessions.pop(session_name, None)
            state = None
        if state is None or name not in state.streams:
            raise StorageReadError("NOT_FOUND", f"Not found: ReadStream {name} (the session "
                                   "expired, or was not made by this local BigQuery)")
        return state, state.streams[name]

    def read(self, name: str, offset: int):
        """Yields (arrow batch or avro bytes, row count, progress at start, at end) from
        `offset` rows into the stream; the first item comes with the session."""
        state, (start, end) = self.stream(name)
        total = end - start
        if offset < 0 or offset > total:
            raise StorageReadError("OUT_OF_RANGE", f"Offset {offset} is beyond the end of "
                                   f"stream {name} ({total} rows).")
        part = state.table.slice(start, total)
        width = max(1, part.nbytes // max(1, total))
        step = max(1, BATCH_BYTES // width)
        position = offset
        while position < total:
            count = min(step, total - position)
            yield part.slice(position, count), count, position / total, \
                (position + count) / total
            position += count

    def split(self, name: str, fraction: float) -> tuple[str, str] | None:
        """Two new streams covering this one's rows, cut at `fraction`; None when the
        stream has fewer than two rows (an empty SplitReadStreamResponse)."""
        if not 0.0 < fraction < 1.0:
            raise _invalid(f"fraction must be in (0.0, 1.0), got {fraction}.")
        state, (start, end) = self.stream(name)
        cut = start + int((end - start) * fraction)
        if end - start < 2:
            return None
        cut = min(max(cut, start + 1), end - 1)
        session = state.name
        primary, remainder = f"{session}/streams/{_id()}", f"{session}/streams/{_id()}"
        with self._lock:
            state.streams[primary] = (start, cut)
            state.streams[remainder] = (cut, end)
        return primary, remainder


def _batch_message(table: pa.Table, options) -> bytes:
    """The rows as one Arrow IPC record batch message, its buffers compressed as asked
    (RecordBatch.serialize takes no write options: the message is cut from a stream)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_batch(table.combine_chunks().to_batches()[0])
    reader = pa.ipc.MessageReader.open_stream(sink.getvalue())
    reader.read_next_message()  # the schema
    return reader.read_next_message().serialize().to_pybytes()


def _id() -> str:
    return secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")


# --- gRPC -----------------------------------------------------------------------------------

def handler(sessions: ReadSessions):
    """BigQueryRead's three RPCs, typed by google-cloud-bigquery-storage's messages."""
    import grpc
    from google.cloud.bigquery_storage_v1 import types
    from google.protobuf import timestamp_pb2

    from labkit.services import grpc_server

    def create(request):
        state = sessions.create(request.parent, request.read_session,
                                request.max_stream_count, request.preferred_min_stream_count)
        expire = timestamp_pb2.Timestamp()
        expire.FromDatetime(state.expires)
        session = types.ReadSession(
            name=state.name, expire_time=expire, table=request.read_session.table,
            data_format=request.read_session.data_format,
            read_options=request.read_session.read_options,
            streams=[types.ReadStream(name=s) for s in state.streams],
            estimated_row_count=state.table.num_rows,
            estimated_total_bytes_scanned=state.table.nbytes)
        if state.data_format == "ARROW":
            session.arrow_schema = types.ArrowSchema(
                serialized_schema=state.table.schema.serialize().to_pybytes())
        else:
            import json

            session.avro_schema = types.AvroSchema(schema=json.dumps(
                avro_schema(state.fields)))
        return session

    def read_rows(request):
        state, _ = sessions.stream(request.read_stream)
        options = pa.ipc.IpcWriteOptions(compression=state.compression)
        first = True
        if state.data_format == "AVRO":
            import fastavro

            parsed = fastavro.parse_schema(avro_schema(state.fields))
        for batch, count, at_start, at_end in sessions.read(request.read_stream,
                                                            request.offset):
            response = types.ReadRowsResponse(
                row_count=count, stats=types.StreamStats(progress=types.StreamStats.Progress(
                    at_response_start=at_start, at_response_end=at_end)))
            if state.data_format == "ARROW":
                response.arrow_record_batch = types.ArrowRecordBatch(
                    serialized_record_batch=_batch_message(batch, options), row_count=count)
                if state.compression:
                    response.uncompressed_byte_size = batch.nbytes
                if first:  # the schema rides on the first response only, as on BigQuery
                    response.arrow_schema = types.ArrowSchema(
                        serialized_schema=state.table.schema.serialize().to_pybytes())
            else:
                out = io.BytesIO()
                for row in _avro_values(batch.to_pylist(), state.fields):
                    fastavro.schemaless_writer(out, parsed, row)
                response.avro_rows = types.AvroRows(serialized_binary_rows=out.getvalue(),
                                                    row_count=count)
                if first:
                    import json

                    response.avro_schema = types.AvroSchema(schema=json.dumps(
                        avro_schema(state.fields)))
            first = False
            yield response

    def split(request):
        parts = sessions.split(request.name, request.fraction)
        if parts is None:
            return types.SplitReadStreamResponse()
        return types.SplitReadStreamResponse(primary_stream=types.ReadStream(name=parts[0]),
                                             remainder_stream=types.ReadStream(name=parts[1]))

    def guarded(method, streaming=False):
        def abort(context, exc):
            if isinstance(exc, StorageReadError):
                context.abort(getattr(grpc.StatusCode, exc.code), exc.message)
            if isinstance(exc, grpc.RpcError) or context.code() is not None:
                raise exc
            context.abort(grpc.StatusCode.INTERNAL, f"The local {PRODUCT} failed: "
                          f"{type(exc).__name__}: {exc}")

        if streaming:
            def call_stream(request, context):
                try:
                    yield from method(request)
                except Exception as exc:  # noqa: BLE001 - said as gRPC statuses
                    abort(context, exc)
            return call_stream

        def call(request, context):
            try:
                return method(request)
            except Exception as exc:  # noqa: BLE001
                abort(context, exc)
        return call

    served = {
        "CreateReadSession": grpc.unary_unary_rpc_method_handler(
            guarded(create), request_deserializer=types.CreateReadSessionRequest.deserialize,
            response_serializer=types.ReadSession.serialize),
        "ReadRows": grpc.unary_stream_rpc_method_handler(
            guarded(read_rows, streaming=True),
            request_deserializer=types.ReadRowsRequest.deserialize,
            response_serializer=types.ReadRowsResponse.serialize),
        "SplitReadStream": grpc.unary_unary_rpc_method_handler(
            guarded(split), request_deserializer=types.SplitReadStreamRequest.deserialize,
            response_serializer=types.SplitReadStreamResponse.serialize),
    }
    return grpc_server.generic_handler(SERVICE, served, PRODUCT)


def serve(workspace, engine, warehouse, anonymous) -> None:
    """Starts the Read API's gRPC server behind the proxy (labkit.services.proxy is
    registered before the BigQuery room that calls this)."""
    from labkit.services import grpc_server, proxy

    sessions = ReadSessions(table_source(engine, warehouse, anonymous),
                            warehouse.dataset_location)
    # The Storage Write API shares the host: none of pandas-gbq (load jobs), Beam's Python
    # WriteToBigQuery (file loads, streaming inserts) or bigframes (inline SQL, load jobs)
    # uses it by default, so its RPCs answer UNIMPLEMENTED, naming LAB_BACKEND=gcp.
    write = grpc_server.generic_handler("google.cloud.bigquery.storage.v1.BigQueryWrite", {},
                                        "BigQuery Storage Write API")
    # the client reads a session's streams in parallel, one ReadRows each
    port = grpc_server.serve(workspace, [handler(sessions), write], max_workers=8)
    proxy.add_route(HOST, port)
