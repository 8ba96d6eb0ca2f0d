"""The README stays true: every setting documented, CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

from braintrust_migrate.config import SETTING_FIELDS, flag_name

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def setup_commands() -> list[str]:
    block = re.search(r"## Set-up.*?```bash\n(.*?)```", README, re.S)
    assert block, "README has no set-up block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_two_setup_commands() -> None:
    assert len(setup_commands()) == 2


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert setup_commands()[1] in ci


def test_every_setting_is_in_the_table_with_its_flag() -> None:
    for field in SETTING_FIELDS:
        row = next((line for line in README.splitlines() if line.startswith(f"| `{field.upper()}` |")), None)
        assert row, f"{field.upper()} missing from README"
        flag = flag_name(field)
        if flag:
            assert f"`{flag}`" in row, f"{flag} missing from the {field.upper()} row"
