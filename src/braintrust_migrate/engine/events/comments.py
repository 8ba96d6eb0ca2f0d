"""Comments, copied exactly once with the destination as the truth.

Feedback appends: a comment sent twice is there twice. So before sending, the batch's
destination rows are read back (one BTQL query per chunk of ids) and only the comments
whose source id is not on them yet are sent. Every copied comment carries its source
comment id in `metadata.migrated_comment.source_comment_id`, so a lost response, a kill
at any instant, a new state dir or `--fresh` can neither double nor drop one. Local
state is consulted only when the destination has no BTQL to read back from.

A comment keeps its text, its `source` (app | api | external) and its own metadata; the
API sets author and time to the migrating key and now, so the original ones go into the
provenance entry beside the user's metadata keys.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate import btql
from braintrust_migrate.client import ApiClient, ApiError, NotFoundError
from braintrust_migrate.engine.events.state import EventState
from braintrust_migrate.engine.events.writer import Encoded

PROVENANCE = "migrated_comment"  # the metadata key holding where a copied comment came from
SOURCES = frozenset({"app", "api", "external"})
READ_CHUNK = 100  # row ids per read-back query


def comment_text(comment: dict[str, Any]) -> str | None:
    """The text of a fetched comment: {"comment": {"text": ...}} as the SDK logs it, or a plain string."""
    body = comment.get("comment", comment.get("text"))
    if isinstance(body, dict):
        body = body.get("text")
    return body if isinstance(body, str) else None


def source_comment_id(row_id: str, comment: dict[str, Any]) -> str:
    """The comment's own id; for a comment without one, a stable id from its row, time and text."""
    if comment.get("id"):
        return str(comment["id"])
    digest = hashlib.sha256(str(comment_text(comment)).encode()).hexdigest()[:16]
    return f"{row_id}:{comment.get('created')}:{digest}"


def landed_ids(row: dict[str, Any]) -> set[str]:
    """Source comment ids of the comments already copied onto a destination row."""
    out = set()
    for comment in row.get("comments") or []:
        meta = comment.get("metadata") if isinstance(comment, dict) else None
        mark = meta.get(PROVENANCE) if isinstance(meta, dict) else None
        if isinstance(mark, dict) and mark.get("source_comment_id"):
            out.add(str(mark["source_comment_id"]))
    return out


def feedback_item(row_id: str, comment: dict[str, Any]) -> dict[str, Any] | None:
    """The feedback that re-creates `comment` on row `row_id`, or None for a comment without text."""
    text = comment_text(comment)
    if text is None:
        return None
    # Sandbox and BTQL rows name them source / metadata; SDK log rows _audit_source / _audit_metadata.
    user_meta = comment.get("metadata", comment.get("_audit_metadata"))
    metadata = dict(user_meta) if isinstance(user_meta, dict) else {}
    provenance: dict[str, Any] = {
        "source_comment_id": source_comment_id(row_id, comment),
        "author": comment.get("user_id") or comment.get("created_by"),
        "created": comment.get("created"),
    }
    if PROVENANCE in metadata:  # a comment this tool copied before (a chain of migrations)
        provenance["previous"] = metadata[PROVENANCE]
    metadata[PROVENANCE] = provenance
    item: dict[str, Any] = {"id": row_id, "comment": text, "metadata": metadata}
    source = comment.get("source", comment.get("_audit_source"))
    if source in SOURCES:
        item["source"] = source
    return item


@dataclass
class CommentResult:
    copied: int = 0
    ok: bool = True
    notes: list[str] = field(default_factory=list)


class CommentCopier:
    def __init__(
        self, dest: ApiClient, kind: str, dest_id: str, events: EventState, stream: str, local: bool = False
    ) -> None:
        self.dest, self.kind, self.dest_id = dest, kind, dest_id
        self.events, self.stream = events, stream
        # `local`: the stream's records are all the destination can hold (a container this run made):
        # they answer instead of a BTQL read per batch (which cost the sandbox more than the insert).
        self.local = local
        self.path = f"/v1/{kind}/{dest_id}/feedback"

    async def copy(self, items: list[Encoded]) -> CommentResult:
        """Send the comments of these written rows that the destination does not hold yet."""
        result = CommentResult()
        wanted: list[dict[str, Any]] = []
        for item in items:
            row_id = item.row_id
            for comment in item.comments:
                feedback = feedback_item(row_id, comment)
                if feedback is not None:
                    wanted.append(feedback)
        if not wanted:
            return result
        try:
            if self.local:
                landed = self._recorded(wanted)
            else:
                landed = await self.landed([f["id"] for f in wanted])
        except NotFoundError:
            # No BTQL on the destination: only local records can tell what was sent.
            landed = self._recorded(wanted)
            result.notes.append("the destination has no BTQL: comments de-duplicated by local state only")
        except ApiError as error:
            return _failed(result, len(wanted), error)
        pending = [f for f in wanted if (f["id"], _sid(f)) not in landed]
        policy = self.dest.retry
        for attempt in range(policy.attempts + 1):
            if not pending:
                break
            try:
                await self.dest.post_json(self.path, {"feedback": pending}, idempotent=False)
            except ApiError as error:
                if not policy.should_resend(attempt, error.status):  # it may have landed: read back first
                    return _failed(result, len(pending), error)
                # The request may have landed with its response lost: look before re-sending.
                await asyncio.sleep(policy.delay(attempt))
                try:
                    landed = await self.landed([f["id"] for f in pending])
                except ApiError as read_error:
                    return _failed(result, len(pending), read_error)
                done = [f for f in pending if (f["id"], _sid(f)) in landed]
                self._record(done, result)
                pending = [f for f in pending if (f["id"], _sid(f)) not in landed]
                continue
            self._record(pending, result)
            pending = []
        return result

    def query(self, row_ids: list[str]) -> btql.Query:
        return btql.Query(self.kind, [self.dest_id], select=("id", "comments"), limit=len(row_ids)).where(
            btql.any_of("id", row_ids)
        )

    async def landed(self, row_ids: list[str]) -> set[tuple[str, str]]:
        """(row id, source comment id) of every comment already copied onto these destination rows."""
        ids = sorted(set(row_ids))
        out: set[tuple[str, str]] = set()
        for start in range(0, len(ids), READ_CHUNK):
            chunk = ids[start : start + READ_CHUNK]
            data = await self.dest.post_json("/btql", self.query(chunk).body())
            for row in data.get("data") or []:
                out |= {(str(row.get("id")), sid) for sid in landed_ids(row)}
        return out

    def _recorded(self, wanted: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(f["id"], _sid(f)) for f in wanted if self.events.comment_done(self.stream, _key(f))}

    def _record(self, sent: list[dict[str, Any]], result: CommentResult) -> None:
        self.events.mark_comments(self.stream, [_key(f) for f in sent])
        result.copied += len(sent)


def _sid(feedback: dict[str, Any]) -> str:
    return str(feedback["metadata"][PROVENANCE]["source_comment_id"])


def _key(feedback: dict[str, Any]) -> str:
    return f"{feedback['id']}:{_sid(feedback)}"


def _failed(result: CommentResult, count: int, error: ApiError) -> CommentResult:
    result.ok = False
    result.notes.append(f"{count} comments not copied: {error.message}")
    return result
