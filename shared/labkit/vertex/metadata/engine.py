"""Vertex ML Metadata: artifacts, executions, contexts, events and lineage (no HTTP here).

Resources live in the workspace's Vertex store; context membership and execution events
live beside them (metadata/membership/<context>, metadata/events/<execution>) because
Vertex returns neither inside the resource. Pipeline runs write here directly; the SDK's
aiplatform.Artifact / Execution / Context and Experiments go through the REST routes.
"""

from __future__ import annotations

import re

from labkit.vertex import errors, operations
from labkit.vertex.metadata.filters import Relations, compile_filter
from labkit.vertex.resources import page
from labkit.vertex.store import ResourceStore, new_id, now

KINDS = {"artifacts": "Artifact", "executions": "Execution", "contexts": "Context"}
# The SDK sends enums as integers (enum-encoding=int); they are kept as names.
STATES = {"artifacts": {1: "PENDING", 2: "LIVE"},
          "executions": {1: "NEW", 2: "RUNNING", 3: "COMPLETE", 4: "FAILED", 5: "CACHED",
                         6: "CANCELLED"}}
EVENT_TYPES = {1: "INPUT", 2: "OUTPUT"}
WRITABLE = {"displayName", "uri", "etag", "labels", "state", "metadata", "description",
            "schemaTitle", "schemaVersion", "parentContexts"}
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")


def store_name(parent: str) -> str:
    return f"{parent}/metadataStores/default"


class Metadata:
    def __init__(self, store: ResourceStore):
        self.store = store
        self.relations = Relations(self.in_context)

    # ---- stores
    def get_store(self, parent: str, store_id: str) -> dict:
        if store_id != "default":
            raise errors.not_found("MetadataStore", f"{parent}/metadataStores/{store_id}")
        return {"name": store_name(parent), "createTime": "1970-01-01T00:00:00Z",
                "description": "The default metadata store of the local Vertex AI.",
                "state": {"diskUtilizationBytes": "0"}}

    def create_store(self, parent: str, store_id: str | None) -> dict:
        resource = self.get_store(parent, store_id or "default")
        return operations.done(self.store, resource["name"], "CreateMetadataStoreOperationMetadata",
                               "MetadataStore", resource)

    # ---- artifacts, executions, contexts
    def _key(self, kind: str, name: str) -> tuple[str, str]:
        return f"metadata/{kind}", name.replace("/", "~")

    def get(self, kind: str, name: str) -> dict:
        resource = self.store.get(*self._key(kind, name))
        if resource is None:
            raise errors.not_found(KINDS[kind], name)
        return resource

    def find(self, kind: str, name: str) -> dict | None:
        return self.store.get(*self._key(kind, name))

    def create(self, kind: str, parent_store: str, body: dict, rid: str | None) -> dict:
        if rid and not ID_PATTERN.fullmatch(rid):
            raise errors.invalid(f"{KINDS[kind]} id {rid!r} must match {ID_PATTERN.pattern}.")
        name = f"{parent_store}/{kind}/{rid or new_id()}"
        with self.store.lock:
            if self.find(kind, name) is not None:
                raise errors.VertexError("ALREADY_EXISTS", f"{KINDS[kind]} {name} already exists.")
            stamp = now()
            resource = {k: v for k, v in body.items() if k in WRITABLE}
            resource.update(name=name, createTime=stamp, updateTime=stamp,
                            etag=new_id())
            resource.setdefault("schemaTitle", "system.Artifact" if kind == "artifacts" else "")
            resource.setdefault("schemaVersion", "0.0.1")
            resource.setdefault("metadata", {})
            if kind in STATES:
                resource["state"] = self._state(kind, resource.get("state"))
            if kind == "contexts":
                for child in resource.get("parentContexts", []):
                    self.get("contexts", child)
            return self.store.put(*self._key(kind, name), resource)

    def _state(self, kind: str, value) -> str:
        default = "LIVE" if kind == "artifacts" else "NEW"
        if value in (None, 0, "STATE_UNSPECIFIED"):
            return default
        if isinstance(value, int):
            if value not in STATES[kind]:
                raise errors.invalid(f"Unknown state {value}.")
            return STATES[kind][value]
        if value not in STATES[kind].values():
            raise errors.invalid(f"Unknown state {value!r}.")
        return value

    def patch(self, kind: str, name: str, body: dict, mask: str | None,
              allow_missing: bool = False) -> dict:
        with self.store.lock:
            resource = self.find(kind, name)
            if resource is None:
                if not allow_missing:
                    raise errors.not_found(KINDS[kind], name)
                parent, _, rid = name.rpartition(f"/{kind}/")
                return self.create(kind, parent, body, rid)
            # Without a mask the SDK sends the whole resource; output-only fields are ignored.
            fields = [f.strip() for f in (mask or "").split(",") if f.strip()] or \
                [k for k in body if k in WRITABLE]
            for field in fields:
                camel = re.sub(r"_([a-z])", lambda m: m[1].upper(), field)
                if camel not in WRITABLE:
                    raise errors.invalid(f"Updating {field} is not supported.")
                if camel == "metadata":
                    # Vertex merges metadata keys on update rather than replacing the struct.
                    resource["metadata"] = {**resource.get("metadata", {}),
                                            **(body.get("metadata") or {})}
                elif camel == "state" and kind in STATES:
                    resource["state"] = self._state(kind, body.get("state"))
                elif camel in body:
                    resource[camel] = body[camel]
            resource["updateTime"] = now()
            return self.store.put(*self._key(kind, name), resource)

    def list(self, kind: str, parent_store: str, query: dict) -> dict:
        predicate = compile_filter(query.get("filter"), self.relations)
        items = [r for r in self.store.all(f"metadata/{kind}")
                 if r["name"].startswith(parent_store + "/") and predicate(r)]
        order = (query.get("orderBy") or "").strip()
        if order:
            field, _, direction = order.partition(" ")
            key = {"create_time": "createTime", "update_time": "updateTime",
                   "display_name": "displayName"}.get(field, field)
            items.sort(key=lambda r: str(r.get(key, "")), reverse=direction.lower() == "desc")
        return page(items, kind, query.get("pageSize"), query.get("pageToken"))

    def delete(self, kind: str, name: str) -> dict:
        with self.store.lock:
            self.get(kind, name)
            self.store.delete(*self._key(kind, name))
            if kind == "contexts":
                self.store.delete(*self._key("membership", name))
            if kind == "executions":
                self.store.delete(*self._key("events", name))
        return operations.done(self.store, name, "DeleteOperationMetadata", None)

    # ---- relations
    def membership(self, context: str) -> dict:
        return self.store.get(*self._key("membership", context)) or {"artifacts": [],
                                                                     "executions": []}

    def in_context(self, name: str, context: str) -> bool:
        members = self.membership(context)
        return name in members["artifacts"] or name in members["executions"]

    def add_to_context(self, context: str, artifacts: list[str], executions: list[str]) -> dict:
        with self.store.lock:
            self.get("contexts", context)
            for artifact in artifacts:
                self.get("artifacts", artifact)
            for execution in executions:
                self.get("executions", execution)
            members = self.membership(context)
            members["artifacts"] += [a for a in artifacts if a not in members["artifacts"]]
            members["executions"] += [e for e in executions if e not in members["executions"]]
            self.store.put(*self._key("membership", context), members)
        return {}

    def add_children(self, context: str, children: list[str]) -> dict:
        with self.store.lock:
            self.get("contexts", context)
            for child_name in children:
                child = self.get("contexts", child_name)
                if child_name == context:
                    raise errors.invalid("A context cannot be its own child.")
                if context not in child.setdefault("parentContexts", []):
                    child["parentContexts"].append(context)
                    self.store.put(*self._key("contexts", child_name), child)
        return {}

    def remove_children(self, context: str, children: list[str]) -> dict:
        with self.store.lock:
            for child_name in children:
                child = self.get("contexts", child_name)
                if context in child.get("parentContexts", []):
                    child["parentContexts"].remove(context)
                    self.store.put(*self._key("contexts", child_name), child)
        return {}

    def events(self, execution: str) -> list[dict]:
        return (self.store.get(*self._key("events", execution)) or {}).get("events", [])

    def add_events(self, execution: str, events: list[dict]) -> dict:
        with self.store.lock:
            self.get("executions", execution)
            recorded = self.events(execution)
            for event in events:
                self.get("artifacts", event.get("artifact", ""))
                kind = event.get("type")
                kind = EVENT_TYPES.get(kind, kind) if isinstance(kind, int) else kind
                if kind not in ("INPUT", "OUTPUT"):
                    raise errors.invalid(f"Event type must be INPUT or OUTPUT, not {kind!r}.")
                recorded.append({"artifact": event["artifact"], "execution": execution,
                                 "eventTime": now(), "type": kind,
                                 **({"labels": event["labels"]} if event.get("labels") else {})})
            self.store.put(*self._key("events", execution), {"events": recorded})
        return {}

    def _all_events(self, store_prefix: str) -> list[dict]:
        found = []
        for record in self.store.all("metadata/events"):
            found += [e for e in record.get("events", [])
                      if e["execution"].startswith(store_prefix)]
        return found

    def _subgraph(self, artifacts: set[str], executions: set[str], events: list[dict]) -> dict:
        return {"artifacts": [a for a in (self.find("artifacts", n) for n in sorted(artifacts))
                              if a],
                "executions": [e for e in (self.find("executions", n) for n in sorted(executions))
                               if e],
                "events": events}

    def execution_io(self, execution: str) -> dict:
        self.get("executions", execution)
        events = self.events(execution)
        return self._subgraph({e["artifact"] for e in events}, {execution}, events)

    def artifact_lineage(self, artifact: str, max_hops: int | None,
                         filter_text: str | None) -> dict:
        """Artifacts and executions reachable from `artifact` over events, within max_hops."""
        self.get("artifacts", artifact)
        prefix = artifact.split("/artifacts/")[0]
        events = self._all_events(prefix)
        hops = max_hops if max_hops and max_hops > 0 else 100
        artifacts, executions, frontier = {artifact}, set(), {artifact}
        for _ in range(hops):
            touching = [e for e in events if e["artifact"] in frontier
                        or e["execution"] in frontier]
            new = ({e["execution"] for e in touching} | {e["artifact"] for e in touching})
            new -= artifacts | executions
            if not new:
                break
            executions |= {e["execution"] for e in touching}
            artifacts |= {e["artifact"] for e in touching}
            frontier = new
        if filter_text:
            keep = compile_filter(filter_text, self.relations)
            artifacts = {a for a in artifacts
                         if (found := self.find("artifacts", a)) and keep(found)}
        kept = [e for e in events if e["artifact"] in artifacts and e["execution"] in executions]
        return self._subgraph(artifacts, executions, kept)

    def context_lineage(self, context: str) -> dict:
        self.get("contexts", context)
        members = self.membership(context)
        executions = set(members["executions"])
        events = [e for x in executions for e in self.events(x)]
        artifacts = set(members["artifacts"]) | {e["artifact"] for e in events}
        return self._subgraph(artifacts, executions, events)
