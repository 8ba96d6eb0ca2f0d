"""Event data (project logs, experiment and dataset rows): storage and write semantics.

Every write of a row is a new *version*; nothing is updated in place except the
``sup_xact`` marker of the version it supersedes. Table ``event_rows``:

* ``seq``        global write counter (the rowid); ``_pagination_key`` is ``'p'`` + ``seq``
                 zero-padded to 20 digits, so keys sort in write order and a row written
                 again gets a new, larger key;
* ``cid``        the container (``event_containers``: kind + object id);
* ``id``         the row id; ``xact_id`` the transaction that wrote this version;
* ``sup_xact``   the transaction that superseded this version (NULL: latest version);
* ``deleted``    1 for an ``_object_delete`` tombstone;
* ``root_span_id``, ``span_id``, ``is_root``, ``created_us`` (created, in µs since the
  epoch): the filterable / sortable columns;
* ``body``       the row exactly as fetch and BTQL return it (orjson bytes), so reads
                 splice stored bytes into responses without decoding them.

``logs3_overflow`` holds SDK payloads uploaded through ``/logs3/overflow`` until the
``/logs3`` call that references them (see :mod:`.logs3`).

"Latest version of each live row" is the partial index ``event_live`` (``sup_xact IS
NULL AND deleted = 0``), ordered by ``seq``: BTQL keyset paging reads it directly. A
snapshot "as of transaction V" is ``xact_id <= V AND (sup_xact IS NULL OR sup_xact >
V)``: no correlated sub-query.

One request = one :class:`EventWriter` = one ``_xact_id`` shared by all its rows.
Several events for the same id in one request are applied in order and stored as one
version (the result), so a row never has two versions with the same ``_xact_id``.

Decided where the spec is silent:

* ``created`` is normalised to UTC ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (microseconds kept when
  present); the instant is the client's.
* Replacing a row (insert without ``_is_merge``) keeps its ``comments`` and
  ``audit_data``: like on braintrust.dev they hang off the row id, not its content.
* Merging (``_is_merge``): objects merge recursively, anything else (arrays, scalars,
  null) replaces; ``_merge_paths`` stop the descent; ``_array_delete`` runs last.
* A comment is ``{"id", "created", "user_id", "source", "comment": {"text"}, "metadata"}``
  (the shape the official SDK logs a comment with, plus who and how);
  an audit entry is ``{"id", "_xact_id", "created", "user_id", "source", "metadata",
  "audit_data": {"action": "feedback", "changes": [{"path", "from", "to"}...],
  "comment"?}}``.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from braintrust_migrate.sandbox.core import permissions, spec
from braintrust_migrate.sandbox.core.common import Ctx, bad_request, not_found
from braintrust_migrate.sandbox.core.store import Row, Store, Tx
from braintrust_migrate.sandbox.events.validate import parse_datetime

SCHEMA = """
CREATE TABLE IF NOT EXISTS event_containers (
    cid       INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL,
    object_id TEXT NOT NULL,
    UNIQUE (kind, object_id)
);
CREATE TABLE IF NOT EXISTS event_rows (
    seq          INTEGER PRIMARY KEY,
    cid          INTEGER NOT NULL,
    id           TEXT NOT NULL,
    xact_id      INTEGER NOT NULL,
    sup_xact     INTEGER,
    deleted      INTEGER NOT NULL,
    root_span_id TEXT NOT NULL,
    span_id      TEXT NOT NULL,
    is_root      INTEGER NOT NULL,
    created_us   INTEGER NOT NULL,
    body         BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS event_live ON event_rows (cid, seq) WHERE sup_xact IS NULL AND deleted = 0;
CREATE INDEX IF NOT EXISTS event_by_id ON event_rows (cid, id, xact_id);
CREATE INDEX IF NOT EXISTS event_history ON event_rows (cid, xact_id, root_span_id);
CREATE TABLE IF NOT EXISTS logs3_overflow (
    key  TEXT PRIMARY KEY,
    body BLOB
);
"""


def install(store: Store) -> None:
    """Create the event tables (idempotent)."""
    store.add_schema(SCHEMA)


# --- containers ---------------------------------------------------------------------------------

CONTROL_FIELDS = frozenset({"_object_delete", "_is_merge", "_merge_paths", "_array_delete", "_parent_id"})
SPAN_FIELDS = frozenset({"span_id", "root_span_id", "span_parents"})
# Ignored when merging into an existing row (the span fields: as the spec says; created: handled apart).
_NOT_MERGED = CONTROL_FIELDS | SPAN_FIELDS | {"id", "created"}


@dataclass(frozen=True)
class Kind:
    name: str  # project_logs | experiment | dataset
    object_type: str  # the object the container belongs to
    id_field: str  # the event field naming the container
    event_schema: str  # what fetch returns
    feedback_schema: str  # one feedback item
    label: str
    fields: tuple[str, ...]  # the event schema's properties, in order

    @classmethod
    def of(cls, name: str, object_type: str, event_schema: str, feedback_schema: str, label: str) -> Kind:
        fields = tuple(spec.schema_properties(event_schema))
        return cls(name, object_type, f"{object_type}_id", event_schema, feedback_schema, label, fields)


KINDS: dict[str, Kind] = {
    "project_logs": Kind.of(
        "project_logs", "project", "ProjectLogsEvent", "FeedbackProjectLogsItem", "project logs"
    ),
    "experiment": Kind.of(
        "experiment", "experiment", "ExperimentEvent", "FeedbackExperimentItem", "experiment"
    ),
    "dataset": Kind.of("dataset", "dataset", "DatasetEvent", "FeedbackDatasetItem", "dataset"),
}


@dataclass(frozen=True)
class Container:
    cid: int
    kind: Kind
    obj: Row  # the project / experiment / dataset
    template: dict[str, Any]  # every event field, null unless fixed by the container

    @property
    def object_id(self) -> str:
        return self.obj.id

    @property
    def org_id(self) -> str:
        return self.obj.org_id or ""

    @property
    def project_id(self) -> str:
        return self.obj.id if self.kind.name == "project_logs" else self.obj.body["project_id"]


def container(tx: Tx, org_ids: Iterable[str], kind: Kind, object_id: str) -> Container:
    """The event container of a live object the caller can see (404 otherwise)."""
    row = tx.get(object_id, [kind.object_type])
    if row is None or row.org_id not in set(org_ids):
        raise not_found(f"{kind.object_type} {object_id} not found")
    permissions.require_container(tx, row, logs=kind.name == "project_logs")
    record = tx.execute(
        "SELECT cid FROM event_containers WHERE kind = ? AND object_id = ?", (kind.name, object_id)
    ).fetchone()
    if record is None:
        cur = tx.execute(
            "INSERT INTO event_containers (kind, object_id) VALUES (?, ?)", (kind.name, object_id)
        )
        cid = int(cur.lastrowid or 0)
    else:
        cid = int(record[0])
    template: dict[str, Any] = dict.fromkeys(kind.fields)
    if kind.name == "project_logs":
        template.update(org_id=row.org_id, project_id=row.id, log_id="g")
    else:
        template.update(project_id=row.body["project_id"], **{kind.id_field: row.id})
    return Container(cid, kind, row, template)


# --- encodings ----------------------------------------------------------------------------------

PAGINATION_DIGITS = 20


def pagination_key(seq: int) -> str:
    return f"p{seq:0{PAGINATION_DIGITS}d}"


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)


def micros(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def canonical_time(moment: dt.datetime) -> str:
    moment = moment.astimezone(dt.UTC)
    precision = "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=precision) + "Z"


def normalize_created(value: str) -> str:
    parsed = parse_datetime(value)
    if parsed is None:  # validated before; keep the message honest anyway
        raise bad_request(f"created: {value!r} is not an RFC 3339 date-time")
    return canonical_time(parsed)


def created_micros(value: str) -> int:
    parsed = parse_datetime(value)
    return micros(parsed) if parsed is not None else 0


def parse_xact(name: str, value: Any) -> int | None:
    """A transaction id parameter (``version``, ``max_xact_id``...): digits, as a string or a number."""
    if value is None:
        return None
    text = str(value) if type(value) is int else value
    if not isinstance(text, str) or not text.isdigit():
        raise bad_request(f"{name}: expected a transaction id (a string of digits)")
    return int(text)


def encode_cursor(value: dict[str, Any]) -> str:
    """An opaque cursor: base64url JSON without padding."""
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any] | None:
    """The value of a cursor made by :func:`encode_cursor` (None when it is not one)."""
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        return None
    return value if isinstance(value, dict) else None


def json_equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)


# --- merging ------------------------------------------------------------------------------------


def merge(
    base: dict[str, Any], patch: dict[str, Any], stop: frozenset[tuple[str, ...]], at: tuple[str, ...]
) -> None:
    """Deep-merge ``patch`` into ``base`` in place (nested dicts of ``base`` are copied first)."""
    for key, value in patch.items():
        here = (*at, key)
        old = base.get(key)
        if type(value) is dict and type(old) is dict and here not in stop:
            merged = dict(old)
            merge(merged, value, stop, here)
            base[key] = merged
        else:
            base[key] = value


def array_delete(body: dict[str, Any], path: list[str], values: list[Any]) -> None:
    """Remove ``values`` from the array at ``path`` (copying the dicts on the way)."""
    if not path:
        return
    node = body
    for part in path[:-1]:
        child = node.get(part)
        if type(child) is not dict:
            return
        node[part] = node = dict(child)
    current = node.get(path[-1])
    if type(current) is list:
        node[path[-1]] = [item for item in current if not any(json_equal(item, v) for v in values)]


def _changes(before: dict[str, Any], after: dict[str, Any], keys: list[str]) -> list[dict[str, Any]]:
    out = []
    for key in keys:
        old, new = before.get(key), after.get(key)
        if key == "scores" and isinstance(new, dict):
            old_scores = old if isinstance(old, dict) else {}
            out += [
                {"path": ["scores", name], "from": old_scores.get(name), "to": value}
                for name, value in new.items()
                if name not in old_scores or not json_equal(old_scores[name], value)
            ]
        elif not json_equal(old, new):
            out.append({"path": [key], "from": old, "to": new})
    return out


# --- writing ------------------------------------------------------------------------------------


@dataclass
class _Version:
    container: Container
    id: str
    body: dict[str, Any] | None  # None: deleted
    old_seq: int | None  # the stored latest version this one supersedes


@dataclass
class _Stored:
    seq: int
    deleted: bool
    raw: bytes
    parsed: dict[str, Any] | None = None

    def body(self) -> dict[str, Any] | None:
        if self.deleted:
            return None
        if self.parsed is None:
            self.parsed = orjson.loads(self.raw)
        return self.parsed


@dataclass
class EventWriter:
    """Applies inserts and feedback for one request, then writes one version per touched row."""

    tx: Tx
    xact_id: str
    now: str
    user_id: str
    _pending: dict[tuple[int, str], _Version] = field(default_factory=dict)
    _stored: dict[tuple[int, str], _Stored | None] = field(default_factory=dict)

    @classmethod
    def for_request(cls, ctx: Ctx) -> EventWriter:
        """A writer with a new transaction id, acting as the caller."""
        return cls(ctx.tx, ctx.tx.next_xact_id(), ctx.now, ctx.caller.user_id)

    # --- reading the current state ------------------------------------------------------------

    def preload(self, c: Container, ids: Iterable[str]) -> None:
        """Fetch the stored latest versions of ``ids`` (one query per 500 ids)."""
        wanted = [i for i in dict.fromkeys(ids) if (c.cid, i) not in self._stored]
        for i in wanted:
            self._stored[(c.cid, i)] = None
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for seq, id_, deleted, raw in self.tx.execute(
                f"SELECT seq, id, deleted, body FROM event_rows WHERE cid = ? AND sup_xact IS NULL "
                f"AND id IN ({','.join('?' * len(chunk))})",
                [c.cid, *chunk],
            ):
                self._stored[(c.cid, id_)] = _Stored(seq, bool(deleted), raw)

    def _stored_version(self, c: Container, id_: str) -> _Stored | None:
        key = (c.cid, id_)
        if key not in self._stored:
            self.preload(c, [id_])
        return self._stored[key]

    def current(self, c: Container, id_: str) -> dict[str, Any] | None:
        """The row as this request sees it (its own earlier writes included); None if absent."""
        pending = self._pending.get((c.cid, id_))
        if pending is not None:
            return pending.body
        stored = self._stored_version(c, id_)
        return stored.body() if stored is not None else None

    def _put(self, c: Container, id_: str, body: dict[str, Any] | None) -> None:
        key = (c.cid, id_)
        pending = self._pending.get(key)
        if pending is not None:
            pending.body = body
            return
        stored = self._stored_version(c, id_)
        self._pending[key] = _Version(c, id_, body, stored.seq if stored is not None else None)

    # --- inserts --------------------------------------------------------------------------------

    def insert(self, c: Container, events: list[dict[str, Any]], where: str) -> list[str]:
        """Apply validated insert events in order; returns the row ids, aligned with ``events``."""
        ids = []
        for event in events:
            id_ = event.get("id")
            if id_ is None:
                id_ = str(uuid.uuid4())
                self._stored[(c.cid, id_)] = None  # a fresh id: nothing to look up
            ids.append(id_)
        self.preload(c, ids)
        for index, (event, id_) in enumerate(zip(events, ids, strict=True)):
            self.apply(c, event, id_, f"{where}[{index}]")
        return ids

    def apply(self, c: Container, event: dict[str, Any], id_: str, where: str) -> None:
        if event.get("_object_delete"):
            self._put(c, id_, None)
            return
        existing = self.current(c, id_)
        if event.get("_is_merge") and existing is not None:
            body = dict(existing)
            patch = {k: v for k, v in event.items() if k not in _NOT_MERGED}
            merge(body, patch, frozenset(tuple(p) for p in event.get("_merge_paths") or ()), ())
            if event.get("created") is not None:
                body["created"] = normalize_created(event["created"])
        else:
            body = self._fresh(c, event, id_, where)
            if existing is not None:
                body["comments"] = existing.get("comments")
                body["audit_data"] = existing.get("audit_data")
        for item in event.get("_array_delete") or ():
            array_delete(body, item["path"], item["delete"])
        self._put(c, id_, body)

    def _fresh(self, c: Container, event: dict[str, Any], id_: str, where: str) -> dict[str, Any]:
        body = dict(c.template)
        for key, value in event.items():
            if key in body and key not in CONTROL_FIELDS:
                body[key] = value
        body["id"] = id_
        created = event.get("created")
        body["created"] = normalize_created(created) if created is not None else self.now
        span_id = event.get("span_id") or str(uuid.uuid4())
        root_span_id = event.get("root_span_id")
        parents = event.get("span_parents")
        parent_id = event.get("_parent_id")
        if parent_id is not None:
            if root_span_id is not None or parents:
                raise bad_request(f"{where}._parent_id: cannot be combined with root_span_id / span_parents")
            parent = self.current(c, parent_id)
            if parent is None:
                raise bad_request(f"{where}._parent_id: no {c.kind.label} row with id {parent_id!r}")
            root_span_id, parents = parent["root_span_id"], [parent["span_id"]]
        body["span_id"] = span_id
        body["root_span_id"] = root_span_id or span_id
        if "span_parents" in body:
            body["span_parents"] = parents
        body["is_root"] = not parents
        return body

    # --- feedback ---------------------------------------------------------------------------------

    def feedback(
        self,
        c: Container,
        id_: str,
        where: str,
        *,
        fields: dict[str, Any],
        comment: str | None = None,
        source: str | None = None,
        metadata: dict[str, Any] | None = None,
        comment_id: str | None = None,
        comment_created: str | None = None,
    ) -> None:
        """Feedback on a row: merge ``scores``, set ``expected`` / ``tags``, add a comment, audit it."""
        existing = self.current(c, id_)
        if existing is None:
            raise bad_request(f"{where}.id: no {c.kind.label} row with id {id_!r}")
        body = dict(existing)
        for key, value in fields.items():
            body[key] = {**(body.get("scores") or {}), **value} if key == "scores" else value
        self._put(c, id_, body)
        self.audit(
            c,
            id_,
            existing,
            list(fields),
            source=source,
            metadata=metadata,
            comment=comment,
            comment_id=comment_id,
            comment_created=comment_created,
        )

    def audit(
        self,
        c: Container,
        id_: str,
        before: dict[str, Any] | None,
        keys: list[str],
        *,
        source: str | None,
        metadata: dict[str, Any] | None,
        comment: str | None = None,
        comment_id: str | None = None,
        comment_created: str | None = None,
    ) -> None:
        """Append an audit entry (and the comment, if any) to the row as it now stands.

        ``keys`` are the fields the feedback set; the entry lists those that changed
        since ``before`` (scores one by one).
        """
        current = self.current(c, id_)
        assert current is not None, "audit() follows a write of the row"
        body = dict(current)
        source = source or "external"
        audit: dict[str, Any] = {"action": "feedback", "changes": _changes(before or {}, body, keys)}
        if comment is not None:
            entry = {
                "id": comment_id or str(uuid.uuid4()),
                "created": comment_created or self.now,
                "user_id": self.user_id,
                "source": source,
                "comment": {"text": comment},
                "metadata": metadata,
            }
            body["comments"] = [*(body.get("comments") or []), entry]
            audit["comment"] = {"id": entry["id"], "text": comment}
        body["audit_data"] = [
            *(body.get("audit_data") or []),
            {
                "id": str(uuid.uuid4()),
                "_xact_id": self.xact_id,
                "created": self.now,
                "user_id": self.user_id,
                "source": source,
                "metadata": metadata,
                "audit_data": audit,
            },
        ]
        self._put(c, id_, body)

    # --- commit -------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write one new version per touched row (in first-touch order) and supersede the old ones."""
        if not self._pending:
            return
        xact = int(self.xact_id)
        seq = self.tx.execute("SELECT coalesce(max(seq), 0) FROM event_rows").fetchone()[0]
        inserts = []
        superseded = []
        for version in self._pending.values():
            seq += 1
            if version.old_seq is not None:
                superseded.append((xact, version.old_seq))
            body = version.body
            if body is None:  # a tombstone: never returned, only its columns matter
                columns: tuple[Any, ...] = (1, "", "", 0, 0, orjson.dumps({"id": version.id}))
            else:
                body["_xact_id"] = self.xact_id
                body["_pagination_key"] = pagination_key(seq)
                root = 1 if body["is_root"] else 0
                created = created_micros(body["created"])
                columns = (0, body["root_span_id"], body["span_id"], root, created, orjson.dumps(body))
            inserts.append((seq, version.container.cid, version.id, xact, *columns))
        self.tx.conn.executemany("UPDATE event_rows SET sup_xact = ? WHERE seq = ?", superseded)
        self.tx.conn.executemany(
            "INSERT INTO event_rows (seq, cid, id, xact_id, deleted, root_span_id, span_id, is_root, "
            "created_us, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            inserts,
        )
        self._pending.clear()
        self._stored.clear()


# --- reading ------------------------------------------------------------------------------------


def live_bodies(tx: Tx, cid: int) -> Iterator[dict[str, Any]]:
    """Every live row of a container (latest versions, not deleted), in write order."""
    for (raw,) in tx.execute(
        "SELECT body FROM event_rows WHERE cid = ? AND sup_xact IS NULL AND deleted = 0 ORDER BY seq", (cid,)
    ):
        yield orjson.loads(raw)


def live_scope(cid: int, version: int | None) -> tuple[list[str], list[Any]]:
    """SQL conditions (and their arguments) for the live rows of a container as of ``version``
    (None: now): the one version of each id that was latest then, tombstones excluded."""
    if version is None:
        return ["cid = ?", "sup_xact IS NULL", "deleted = 0"], [cid]
    return ["cid = ?", "xact_id <= ?", "(sup_xact IS NULL OR sup_xact > ?)", "deleted = 0"], [
        cid,
        version,
        version,
    ]


def live_count(tx: Tx, cid: int) -> int:
    return int(
        tx.execute(
            "SELECT count(*) FROM event_rows WHERE cid = ? AND sup_xact IS NULL AND deleted = 0", (cid,)
        ).fetchone()[0]
    )
