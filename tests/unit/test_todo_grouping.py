"""The summary's to-do list: one line per kind, most common first, counts and the first names;
the report keeps every item."""

from __future__ import annotations

import random

from braintrust_migrate.engine.report import FOLLOW_UPS, Outcome, build_report, summary_text

MEDIUM = {"user_not_mapped": 48, "env_var_needs_value": 23, "code_bundle_not_migratable": 15}


def _outcomes() -> tuple[list[Outcome], list[str]]:
    outcomes = [
        Outcome(
            "env_vars",
            "env_var",
            f"VAR_{i:02d}",
            f"ev{i}",
            "created",
            project="P",
            reason="env_var_needs_value",
        )
        for i in range(23)
    ]
    outcomes += [
        Outcome(
            "functions",
            "function",
            f"bundle {i:02d}",
            f"fn{i}",
            "skipped",
            project="P",
            reason="code_bundle_not_migratable",
        )
        for i in range(15)
    ]
    outcomes += [
        Outcome("ai_secrets", "ai_secret", f"KEY_{i}", f"s{i}", "created", reason="secret_needs_value")
        for i in range(4)
    ]
    random.Random(7).shuffle(outcomes)
    users = [f"user{i:02d}@example.com" for i in range(48)]
    random.Random(8).shuffle(users)
    return outcomes, users


def _todo_section(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("To do by hand"))
    section = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        section.append(line)
    return section


def test_todo_list_is_grouped_by_kind_most_common_first():
    outcomes, users = _outcomes()
    report = build_report({"run_id": "r"}, outcomes, users)
    assert len(report["follow_ups"]) == 48 + 23 + 15 + 4  # the full list stays in the report JSON
    section = _todo_section(summary_text(report))
    assert len(section) == 4, section
    reasons = [line.split()[0] for line in section]
    assert reasons == [
        "user_not_mapped",
        "env_var_needs_value",
        "code_bundle_not_migratable",
        "secret_needs_value",
    ]
    for line, reason in zip(section, reasons, strict=True):
        count = MEDIUM.get(reason, 4)
        assert line.strip().startswith(f"{reason} ({count}): "), line
        assert line.endswith(f"fix: {FOLLOW_UPS[reason]}"), line
    users_line = section[0]
    assert "user00@example.com, user01@example.com, user02@example.com and 45 more" in users_line
    assert "user03@example.com" not in users_line
    assert "'P/VAR_00'" in section[1] and "and 20 more" in section[1]
    assert "ai_secrets 'KEY_0', 'KEY_1', 'KEY_2' and 1 more" in section[3]


def test_todo_order_is_stable_for_ties():
    outcomes = [
        Outcome("ai_secrets", "ai_secret", "B", "s1", "created", reason="secret_needs_value"),
        Outcome("env_vars", "env_var", "A", "e1", "created", reason="env_var_needs_value"),
    ]
    first = _todo_section(summary_text(build_report({}, outcomes, [])))
    second = _todo_section(summary_text(build_report({}, list(reversed(outcomes)), [])))
    assert first == second
    assert [line.split()[0] for line in first] == ["env_var_needs_value", "secret_needs_value"]


def test_user_todo_does_not_ask_for_map_users_when_it_was_given() -> None:
    from braintrust_migrate.engine.report import follow_ups

    plain = follow_ups([], ["a@example.com"])
    mapped = follow_ups([], ["a@example.com"], users_mapped=True)
    assert "--map-users" in plain[0]["todo"]
    assert "--map-users" not in mapped[0]["todo"] and "--invite-users" in mapped[0]["todo"]
