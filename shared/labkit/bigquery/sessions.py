"""BigQuery sessions: a job with createSession starts one, later jobs join it with the
connection property session_id, and the session's temporary tables outlive the job that
made them (https://cloud.google.com/bigquery/docs/sessions-intro).

Each session keeps its temporary tables in a hidden dataset of its own (`_session_<id>`,
hidden from datasets.list as BigQuery hides datasets whose names start with "_"), so every
later job of the session, on any thread, finds them by their bare names or as
`_SESSION.name`. Sessions live as long as the services process.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

from sqlglot import exp

from labkit.bigquery.errors import invalid, invalid_query


@dataclass
class Session:
    id: str
    project: str
    location: str
    tables: set[str] = field(default_factory=set)  # its temporary tables, lower case

    @property
    def dataset(self) -> str:
        return f"_session_{self.id}"


class Sessions:
    def __init__(self):
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, project: str, location: str) -> Session:
        session = Session(secrets.token_hex(12), project, location)
        with self._lock:
            self._sessions[session.id] = session
        return session

    def get(self, session_id, project: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None or session.project != project:
            raise invalid(f"Session {session_id} does not exist or has ended; start one with "
                          "createSession")
        return session


def place(tree: exp.Expression, session: Session) -> bool:
    """Points the statement's session tables at the session's dataset: CREATE TEMP TABLE
    becomes a table there, bare names (and _SESSION.name) of session tables read it.
    Returns True when the statement creates a session table (its dataset must exist)."""
    creates = False
    props = tree.args.get("properties") if isinstance(tree, exp.Create) else None
    temporary = [p for p in props.expressions if isinstance(p, exp.TemporaryProperty)] \
        if props else []
    if temporary:
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if len(target.parts) != 1:
            raise invalid_query("Temporary tables may not be qualified")
        for p in temporary:
            p.pop()
        session.tables.add(target.name.lower())
        creates = True
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        parts = [p.name for p in table.parts]
        named = (len(parts) == 1 and parts[0].lower() in session.tables
                 and parts[0].lower() not in ctes)
        if named or (len(parts) == 2 and parts[0].upper() == "_SESSION"):
            table.set("db", exp.to_identifier(session.dataset))
            table.set("catalog", exp.to_identifier(session.project))
    return creates
