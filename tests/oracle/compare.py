"""Comparing a destination org with its source: objects, ACLs, rows, traces, comments.

Every gap the comparison accepts is one of EXPECTED_GAPS, by name; everything else that
differs is reported."""

from __future__ import annotations

import copy
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from tests.oracle.diff import UUID, Diff, Pin, compare, translate
from tests.oracle.identity import BUILTIN_GROUPS, Matching, match
from tests.oracle.reader import OrgData, OrgReader

EXPECTED_GAPS = {
    "secret_value_unreadable": "AI secret and env var values are never returned (preview_secret, used)",
    "user_not_mapped": "a source user with no destination member of the same email has no counterpart",
    "code_bundle_not_migratable": "functions with bundled code have no upload API: they stay behind",
    "reference_not_migrated": "a reference to an object with no counterpart is dropped with its element",
    "older_version_not_migrated": "a pin to an older prompt/function version than the copied one is dropped",
    "comment_provenance": "the API sets a comment's author and time; the original time is in its metadata",
    "builtin_group_membership": "Owners/Engineers/Viewers pre-exist in every org with that org's members",
    "system_roles": "roles with org_id null are global: the same ids in every org, never copied",
    "origin_xact_not_portable": "a row's origin._xact_id names a source transaction",
    "row_audit_trail": "audit_data and classifications are written by the API, not by inserts",
    "offloaded_to_attachment": "a field too large for one insert is an attachment holding the same JSON",
}
# Set by the API on every object (and the creator, except where a client sets it).
SERVER_SET = frozenset(
    {"id", "created", "_xact_id", "org_id", "log_id", "url_slug", "position", "updated_at", "_object_org_id"}
    | {"deleted_at", "user_id"}
)
SKIP: dict[str, frozenset[str]] = {
    "ai_secrets": SERVER_SET | {"preview_secret"},  # secret_value_unreadable
    "env_vars": SERVER_SET | {"used"},  # secret_value_unreadable
    "views": SERVER_SET - {"user_id"},  # a view's user_id is written by the client
}
ROW_FIELDS = (
    "input", "output", "expected", "metadata", "scores", "metrics", "tags", "span_attributes", "error",
    "created", "span_id", "root_span_id", "span_parents", "is_root", "origin", "context", "facets",
)  # fmt: skip


@dataclass
class OracleResult:
    differences: dict[str, list[str]] = field(default_factory=dict)
    accepted: Counter[str] = field(default_factory=Counter)  # named gaps met, and how often
    objects_compared: int = 0
    rows_compared: int = 0
    comments_compared: int = 0
    attachments_compared: int = 0  # references judged by the blob they name, not by their key

    def add(self, category: str, message: str) -> None:
        self.differences.setdefault(category, []).append(message)

    @property
    def ok(self) -> bool:
        return not any(self.differences.values())

    def summary(self, per_category: int = 8) -> str:
        lines = [
            f"compared {self.objects_compared} objects, {self.rows_compared} rows, "
            f"{self.comments_compared} comments, {self.attachments_compared} attachments; "
            f"accepted gaps: {dict(self.accepted)}"
        ]
        for category, items in sorted(self.differences.items()):
            if items:
                lines.append(f"{category}: {len(items)} difference(s)")
                lines += [f"  {item}" for item in items[:per_category]]
        return "\n".join(lines)

    def assert_equal(self) -> None:
        if not self.ok:
            raise AssertionError("the destination differs from the source:\n" + self.summary())


def _bundled(obj: dict[str, Any]) -> bool:
    data = obj.get("function_data") or {}
    return data.get("type") == "code" and (data.get("data") or {}).get("type") == "bundle"


def compare_orgs(
    url: str,
    source_key: str,
    dest_key: str,
    *,
    rows: bool = True,
    project_names: dict[str, str] | None = None,
) -> OracleResult:
    """`project_names`: source project name -> the name the destination should call it (renames)."""
    with OrgReader(url, source_key) as src_reader, OrgReader(url, dest_key) as dst_reader:
        source, dest = src_reader.read_all(rows), dst_reader.read_all(rows)
        return Comparison(source, dest, src_reader, dst_reader, project_names).run(rows)


class Comparison:
    def __init__(
        self,
        source: OrgData,
        dest: OrgData,
        src_reader: OrgReader,
        dst_reader: OrgReader,
        project_names: dict[str, str] | None = None,
    ) -> None:
        self.source, self.dest = source, dest
        self.src_reader, self.dst_reader = src_reader, dst_reader
        self.result = OracleResult()
        self.project_names = dict(project_names or {})
        self.m: Matching = match(source, dest, self.project_names)
        self.kind_of = {o["id"]: name for name, objs in source.objects.items() for o in objs}
        self.src_obj = {o["id"]: o for objs in source.objects.values() for o in objs}
        system = {r["id"] for r in source.objects["roles"] if r.get("org_id") is None}
        for role_id in system:
            self.m.id_map.setdefault(role_id, role_id)
        # Any source object id: a value naming one that has no counterpart is a dangling reference.
        self.source_ids = {i for i in self.kind_of if i not in system} | {source.org["id"]}
        dest_users = {u["id"] for u in dest.objects["users"]}
        self.leak_ids = {i for i in self.source_ids if i not in dest_users}

    def run(self, rows: bool) -> OracleResult:
        r = self.result
        for item in self.m.duplicates:
            r.add("duplicate objects", item)
        self._objects()
        if rows:
            self._rows()
        self._leaks(rows)
        return r

    # --- objects -------------------------------------------------------------------------------

    def _objects(self) -> None:
        r = self.result
        for name, pairs in self.m.pairs.items():
            for src, dst in pairs:
                label = f"{name} {src.get('name') or src.get('slug') or src['id']}"
                if name == "roles" and src.get("org_id") is None:
                    r.accepted["system_roles"] += 1
                    continue
                if name == "functions" and _bundled(src):
                    r.accepted["code_bundle_not_migratable"] += 1
                    if dst is not None:
                        r.add("objects", f"{label}: a bundled-code function was copied")
                    continue
                if dst is None:
                    if self._owner_not_migrated(name, src):
                        r.accepted["reference_not_migrated"] += 1
                    else:
                        r.add("missing objects", label)
                    continue
                r.objects_compared += 1
                if name == "acls":
                    continue  # an ACL is its identity: found means equal
                skip = SKIP.get(name, SERVER_SET)
                if name == "groups" and src["name"] in BUILTIN_GROUPS:
                    skip = skip | {"member_users"}
                    r.accepted["builtin_group_membership"] += 1
                if name == "views" and src.get("user_id") in self.m.unmapped_users:
                    skip = skip | {"user_id"}  # the API makes the writer the view's user instead
                    r.accepted["user_not_mapped"] += 1
                if name in ("ai_secrets", "env_vars"):
                    r.accepted["secret_value_unreadable"] += 1
                diff = Diff()
                compare(self._translate(self._renamed(name, src)), dst, label, diff, skip)
                self._judge(diff, "objects")
        for name, extra in self.m.extra.items():
            for obj in extra:
                if name == "roles" and obj.get("org_id") is None:
                    continue
                r.add("unexpected destination objects", f"{name} {obj.get('name') or obj['id']}")

    def _owner_not_migrated(self, name: str, src: dict[str, Any]) -> bool:
        owner = {"views": "object_id", "env_vars": "object_id", "dataset_snapshots": "dataset_id"}.get(
            name, "project_id"
        )
        if name == "acls":
            refs = [src.get(f) for f in ("object_id", "group_id", "role_id", "user_id") if src.get(f)]
            if src.get("user_id") in self.m.unmapped_users:
                self.result.accepted["user_not_mapped"] += 1
                return True
            return any(ref not in self.m.id_map for ref in refs)
        owner_id = src.get(owner)
        if owner_id is None or owner_id in self.m.id_map:
            return False
        owner_obj = self.src_obj.get(owner_id)
        return owner_obj is None or (self.kind_of.get(owner_id) == "functions" and _bundled(owner_obj))

    def _renamed(self, name: str, src: dict[str, Any]) -> dict[str, Any]:
        """The source object with the expected project names: a project's own name, and a
        graph function node's `project_name` (the only fields the API gives a project name)."""
        if not self.project_names or name not in ("projects", "functions"):
            return src
        out = copy.deepcopy(src)
        if name == "projects":
            out["name"] = self.project_names.get(out["name"], out["name"])
            return out
        nodes = (out.get("function_data") or {}).get("nodes")
        for node in nodes.values() if isinstance(nodes, dict) else ():
            fn = node.get("function") if isinstance(node, dict) else None
            if isinstance(fn, dict) and fn.get("project_name") in self.project_names:
                fn["project_name"] = self.project_names[fn["project_name"]]
        return out

    def _translate(self, value: Any) -> Any:
        return translate(value, self.m.id_map, self.source_ids | self.m.unmapped_users)

    def _judge(self, diff: Diff, category: str) -> None:
        for item in diff.differences:
            self.result.add(category, item)
        if diff.dropped:
            self.result.accepted["reference_not_migrated"] += len(diff.dropped)
        for pin in diff.pins:
            self._check_pin(pin)

    def _check_pin(self, pin: Pin) -> None:
        r = self.result
        reverse = {v: k for k, v in self.m.id_map.items()}
        src_id = reverse.get(pin.target)
        kind = self.kind_of.get(src_id or "")
        if kind == "datasets":
            if pin.dst_version is None:
                r.add("version pins", f"{pin.path}: the dataset version pin {pin.src_version} was dropped")
                return
            before = self.src_reader.rows("dataset", str(src_id), pin.src_version)
            after = self.dst_reader.rows("dataset", pin.target, pin.dst_version)
            diff = Diff()
            self._compare_rows(before, after, f"{pin.path} (as of the pin)", diff, comments=False)
            for item in diff.differences:
                r.add("version pins", item)
            return
        if kind in ("prompts", "functions"):
            latest = str(self.src_obj[str(src_id)].get("_xact_id"))
            if pin.dst_version is None:
                if pin.src_version == latest:
                    r.add("version pins", f"{pin.path}: the pin to the copied version was dropped")
                else:
                    r.accepted["older_version_not_migrated"] += 1
                return
            path = "/v1/prompt" if kind == "prompts" else "/v1/function"
            was = self.src_reader.at_version(path, str(src_id), pin.src_version)
            now = self.dst_reader.at_version(path, pin.target, pin.dst_version)
            if was is None or now is None:
                r.add("version pins", f"{pin.path}: version not readable (source {was is not None})")
                return
            diff = Diff()
            compare(self._translate(was), now, f"{pin.path} (as of the pin)", diff, SERVER_SET)
            for item in diff.differences:
                r.add("version pins", item)
            return
        r.add("version pins", f"{pin.path}: pins an object the oracle cannot place ({kind})")

    # --- rows ----------------------------------------------------------------------------------

    def _rows(self) -> None:
        for (kind, src_container), src_rows in self.source.rows.items():
            dst_container = self.m.id_map.get(src_container)
            if dst_container is None:
                continue  # the container itself is reported missing
            dst_rows = self.dest.rows.get((kind, dst_container), {})
            diff = Diff()
            self._compare_rows(src_rows, dst_rows, f"{kind} {src_container[:8]}", diff, comments=True)
            for item in diff.differences:
                self.result.add("comments" if "comment" in item else "rows", item)

    def _compare_rows(
        self,
        src_rows: dict[str, dict[str, Any]],
        dst_rows: dict[str, dict[str, Any]],
        where: str,
        diff: Diff,
        comments: bool,
    ) -> None:
        r = self.result
        missing, extra = set(src_rows) - set(dst_rows), set(dst_rows) - set(src_rows)
        if missing:
            diff.differences.append(f"{where}: {len(missing)} rows missing, e.g. {sorted(missing)[:3]}")
        if extra:
            diff.differences.append(f"{where}: {len(extra)} rows not in the source, e.g. {sorted(extra)[:3]}")
        for row_id in sorted(set(src_rows) & set(dst_rows)):
            src, dst = src_rows[row_id], dst_rows[row_id]
            r.rows_compared += 1
            expected = self._translate({k: src.get(k) for k in ROW_FIELDS})
            actual = {k: dst.get(k) for k in ROW_FIELDS}
            if isinstance(expected.get("origin"), dict):
                expected["origin"].pop("_xact_id", None)
                r.accepted["origin_xact_not_portable"] += 1
            if isinstance(actual.get("origin"), dict):
                actual["origin"] = {k: v for k, v in actual["origin"].items() if k != "_xact_id"}
            for key, value in actual.items():
                if _attachment(value) and not _attachment(src.get(key)):
                    actual[key] = self.dst_reader.attachment_json(value, self.dest.org["id"])
                    r.accepted["offloaded_to_attachment"] += 1
                else:
                    actual[key] = self._same_blobs(src.get(key), value, f"{where} row {row_id}.{key}", diff)
            if src.get("audit_data") or src.get("classifications"):
                r.accepted["row_audit_trail"] += 1
            compare(expected, actual, f"{where} row {row_id}", diff)
            if comments:
                self._compare_comments(src, dst, f"{where} row {row_id}", diff)
        self._judge(Diff(dropped=diff.dropped, pins=diff.pins), "rows")

    def _same_blobs(self, src: Any, dst: Any, path: str, diff: Diff) -> Any:
        """`dst` with every attachment reference that names the same blob (bytes, filename,
        content type) as the source's at the same place replaced by the source's reference:
        a copied attachment gets a new key, and the key alone says nothing of the content."""
        if _attachment(src) and _attachment(dst):
            if src.get("key") == dst.get("key"):
                return dst  # the reference was kept as it is (attachments not copied)
            meta = ("filename", "content_type")
            if any(src.get(k) != dst.get(k) for k in meta):
                return dst  # the tree diff reports the field that differs
            before = self.src_reader.attachment_bytes(src, self.source.org["id"])
            try:
                after = self.dst_reader.attachment_bytes(dst, self.dest.org["id"])
            except httpx.HTTPStatusError as exc:
                diff.differences.append(
                    f"{path}: attachment not readable in the destination (HTTP {exc.response.status_code})"
                )
                return self._translate(src)
            if before != after:
                diff.differences.append(
                    f"{path}: attachment content differs ({len(before)} bytes, {len(after)} in the destination)"
                )
                return self._translate(src)  # one difference, not a second one for the key
            self.result.attachments_compared += 1
            return self._translate(src)
        if isinstance(src, dict) and isinstance(dst, dict):
            return {k: self._same_blobs(src.get(k), v, f"{path}.{k}", diff) for k, v in dst.items()}
        if isinstance(src, list) and isinstance(dst, list) and len(src) == len(dst):
            return [
                self._same_blobs(a, b, f"{path}[{i}]", diff)
                for i, (a, b) in enumerate(zip(src, dst, strict=True))
            ]
        return dst

    def _compare_comments(self, src: dict[str, Any], dst: dict[str, Any], where: str, diff: Diff) -> None:
        src_c, dst_c = src.get("comments") or [], dst.get("comments") or []
        if Counter(map(_text, src_c)) != Counter(map(_text, dst_c)):
            diff.differences.append(
                f"{where}: comments {sorted(map(_text, src_c))} became {sorted(map(_text, dst_c))}"
            )
            return
        for comment in src_c:
            self.result.comments_compared += 1
            same = [c for c in dst_c if _text(c) == _text(comment)]
            if not any(_keeps_provenance(comment, c) for c in same):
                diff.differences.append(f"{where}: comment {_text(comment)!r} lost its original time")
            elif not any(c.get("created") == comment.get("created") for c in same):
                self.result.accepted["comment_provenance"] += 1

    # --- leaks ---------------------------------------------------------------------------------

    def _leaks(self, rows: bool) -> None:
        found: list[str] = []

        def walk(value: Any, where: str) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    walk(item, f"{where}.{key}")
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    walk(item, f"{where}[{index}]")
            elif isinstance(value, str) and len(value) >= 36:
                for candidate in _uuids(value):
                    if candidate in self.leak_ids:
                        found.append(f"{where}: {self.kind_of.get(candidate, 'organization')} {candidate}")

        for name, objs in self.dest.objects.items():
            if name != "users":
                for obj in objs:
                    walk(obj, f"{name} {obj.get('name') or obj['id']}")
        if rows:
            for (kind, container), dst_rows in self.dest.rows.items():
                for row_id, row in dst_rows.items():
                    walk(row, f"{kind} {container[:8]} row {row_id}")
        for item in found:
            self.result.add("source ids in the destination", item)


def _uuids(value: str) -> list[str]:
    return UUID.findall(value)


def _attachment(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "braintrust_attachment"


def _text(comment: dict[str, Any]) -> str:
    body = comment.get("comment", comment.get("text"))
    return str(body.get("text") if isinstance(body, dict) else body)


def _keeps_provenance(src: dict[str, Any], dst: dict[str, Any]) -> bool:
    """The original time is the comment's own, or is somewhere in its metadata."""
    created = src.get("created")
    return created is None or dst.get("created") == created or _contains(dst.get("metadata"), created)


def _contains(value: Any, wanted: Any) -> bool:
    if isinstance(value, dict):
        return any(_contains(v, wanted) for v in value.values())
    if isinstance(value, list):
        return any(_contains(v, wanted) for v in value)
    return value == wanted


def fingerprint(url: str, api_key: str) -> str:
    """A digest of everything an org holds (objects and rows): equal digests, untouched org."""
    with OrgReader(url, api_key) as reader:
        data: OrgData = reader.read_all(True)
    payload = {"objects": data.objects, "rows": {f"{k}:{c}": v for (k, c), v in sorted(data.rows.items())}}
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
