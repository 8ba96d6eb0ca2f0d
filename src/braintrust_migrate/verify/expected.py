"""What `migrate` reported it could not do (its to-dos): `verify` lists these differences as
expected, each with its to-do, instead of failing on them. Anything else still fails."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from braintrust_migrate.engine.refs import USER_KIND
from braintrust_migrate.engine.report import FOLLOW_UPS

# To-dos that leave a known, accepted difference behind (others, e.g. an unresolved
# reference, are not accepted: the object is incomplete for a reason verify cannot vouch for).
EXPECTED_REASONS = (
    "user_not_mapped",
    "secret_needs_value",
    "env_var_needs_value",
    "code_bundle_not_migratable",
)
WHAT = {
    "user_not_mapped": "a user with no destination member of the same email is left out",
    "secret_needs_value": "the secret has no value in the destination",
    "env_var_needs_value": "the env var has no value in the destination",
    "code_bundle_not_migratable": "bundled code cannot be uploaded through the API: not in the destination",
}
TODO = {
    **{reason: FOLLOW_UPS[reason] for reason in EXPECTED_REASONS},
    "user_not_mapped": "invite the user into the destination org, then re-run `migrate --map-users`"
    " (or re-run it with `--map-users --invite-users`)",
}


def reason_of(outcome: dict[str, Any]) -> str | None:
    """The accepted to-do an outcome of `migrate` carries, if any."""
    if outcome.get("reason") in EXPECTED_REASONS:
        return str(outcome["reason"])
    if any((u or {}).get("target_type") == USER_KIND for u in outcome.get("unresolved") or ()):
        return "user_not_mapped"
    return None


@dataclass
class Todos:
    """The latest outcome with an accepted to-do of each object, over every (real) run."""

    outcomes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    runs: int = 0
    emails: dict[str, str] = field(default_factory=dict)  # source user id -> email, to name them

    def reason(self, type_name: str, source_id: str) -> str | None:
        outcome = self.outcomes.get((type_name, source_id))
        return reason_of(outcome) if outcome else None

    def entry(
        self, type_name: str, label: dict[str, Any], reason: str, detail: str | None = None
    ) -> dict[str, Any]:
        outcome = self.outcomes.get((type_name, str(label.get("source_id")))) or {}
        item = {"type": type_name, **label, "reason": reason, "what": detail or WHAT[reason]}
        if outcome.get("project"):
            item["project"] = outcome["project"]
        users = {
            self.emails.get(u["target_id"], u["target_id"])
            for u in outcome.get("unresolved") or ()
            if u.get("target_type") == USER_KIND
        }
        notes = [n for n in outcome.get("notes") or () if n.startswith("user ")]
        if users or notes:
            item["users"] = sorted({n[len("user ") :] for n in notes} | users)
        item["todo"] = TODO[reason]
        return item


def load_todos(pair_folder: Path) -> Todos:
    """Every migration report of this org pair, oldest first; dry runs wrote nothing, so they
    are left out. A report that cannot be read is ignored: its differences then fail."""
    reports = []
    for path in (pair_folder / "runs").glob("*/migration_report.json"):
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if isinstance(data, dict) and not data.get("dry_run"):
            reports.append(data)
    reports.sort(key=lambda r: (str(r.get("written_at") or ""), str(r.get("run_id") or "")))
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for report in reports:
        for outcome in report.get("objects") or ():
            if isinstance(outcome, dict) and outcome.get("type") and outcome.get("source_id"):
                latest[(str(outcome["type"]), str(outcome["source_id"]))] = outcome
    return Todos({key: o for key, o in latest.items() if reason_of(o)}, len(reports))


def grouped(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_reason: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_reason[item["reason"]].append(item)
    return dict(sorted(by_reason.items()))
