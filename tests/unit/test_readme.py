"""The README stays true: every setting documented, CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

from braintrust_migrate.config import SETTING_FIELDS, flag_name, load_settings

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


def readme_table() -> dict[str, str]:
    """The Configuration table: variable -> its default cell (backticks removed)."""
    rows: dict[str, str] = {}
    for line in README.split("| variable | flag | default | meaning |", 1)[1].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[2].strip("`")
    return rows


def env_example() -> dict[str, str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    found = [re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=(.*)", line) for line in text.splitlines()]
    return {match.group(1): match.group(2) for match in found if match}


def test_env_example_and_readme_table_list_the_same_settings_and_defaults() -> None:
    table, example = readme_table(), env_example()
    assert set(table) == {field.upper() for field in SETTING_FIELDS}
    assert set(example) == set(table), set(example) ^ set(table)
    for name, value in example.items():
        if name.endswith("_API_KEY"):
            assert value == "sk-..." and table[name] == "—", name  # a placeholder, never a default
        else:
            # An empty value means unset: the README says "—" (nothing) or "all" (no filter).
            assert table[name] == value or (value == "" and table[name] in {"—", "all"}), name


def test_env_example_uncommented_gives_the_defaults(tmp_path: Path, monkeypatch) -> None:
    # Independent of both documents: the settings loaded from the uncommented file are the defaults.
    for field in SETTING_FIELDS:
        monkeypatch.delenv(field.upper(), raising=False)
    lines = [f"{name}={value}" for name, value in env_example().items() if not name.endswith("_API_KEY")]
    env = tmp_path / ".env"
    env.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert load_settings(env_file=env).model_dump() == load_settings(env_file=None).model_dump()
