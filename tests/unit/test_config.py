"""Configuration: layered precedence, validation errors, secrets kept out of output."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from braintrust_migrate.config import ConfigError, Settings, load_settings, split_list
from braintrust_migrate.redact import preview, scrub


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.bt_source_url == "https://api.braintrust.dev"
    assert settings.bt_dest_url == "https://api.braintrust.dev"
    assert settings.migration_state_dir == Path("./checkpoints")
    assert settings.migration_resources == []
    assert settings.log_level == "INFO"


def test_precedence_flag_env_dotenv_file_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = write(
        tmp_path / "cfg.yaml",
        "MIGRATION_BATCH_SIZE: 11\nMIGRATION_RETRY_ATTEMPTS: 7\nMIGRATION_MAX_CONCURRENT: 5\nmigration_retry_delay: 2.5\n",
    )
    write(tmp_path / ".env", "MIGRATION_BATCH_SIZE=22\nMIGRATION_RETRY_ATTEMPTS=8\nOTHER_TOOL_SETTING=x\n")
    monkeypatch.setenv("MIGRATION_BATCH_SIZE", "33")
    settings = load_settings({"migration_batch_size": 44}, config_file=config)
    assert settings.migration_batch_size == 44  # flag beats everything
    assert settings.migration_retry_attempts == 8  # .env beats config file
    assert settings.migration_max_concurrent == 5  # config file beats default
    assert settings.migration_retry_delay == 2.5  # keys are case-insensitive
    assert settings.migration_checkpoint_interval == 50  # default
    settings = load_settings({}, config_file=config)
    assert settings.migration_batch_size == 33  # env beats .env


def test_json_config_file(tmp_path: Path) -> None:
    config = write(tmp_path / "cfg.json", json.dumps({"LOG_FORMAT": "json", "MIGRATION_PROJECTS": "A,B"}))
    settings = load_settings(config_file=config)
    assert settings.log_format == "json"
    assert settings.migration_projects == ["A", "B"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"migration_max_concurrent": 0}, "MIGRATION_MAX_CONCURRENT (--max-concurrent)=0"),
        ({"migration_max_concurrent_requests": 9999}, "allowed: an integer from 1 to 512"),
        ({"migration_batch_size": "ten"}, "MIGRATION_BATCH_SIZE (--batch-size)='ten'"),
        ({"migration_retry_attempts": -1}, "MIGRATION_RETRY_ATTEMPTS"),
        ({"migration_request_timeout": 0}, "MIGRATION_REQUEST_TIMEOUT"),
        ({"log_level": "loud"}, "allowed: DEBUG, INFO, WARNING or ERROR"),
        ({"log_format": "xml"}, "LOG_FORMAT (--log-format)='xml'"),
        (
            {"bt_source_url": "ftp://example.com"},
            "BT_SOURCE_URL (--source-url)='ftp://example.com': not an http",
        ),
        ({"bt_dest_url": "not a url"}, "BT_DEST_URL"),
        ({"migration_resources": "datasets,promtps"}, "unknown resource type 'promtps'"),
        ({"migration_created_after": "yesterday"}, "MIGRATION_CREATED_AFTER (--created-after)='yesterday'"),
    ],
)
def test_bad_values_name_setting_value_and_allowed(overrides: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(overrides)
    message = str(info.value)
    assert expected in message
    assert "allowed:" in message
    assert len(message.splitlines()) == 1


def test_bad_env_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATION_CHECKPOINT_INTERVAL", "0")
    with pytest.raises(ConfigError, match="MIGRATION_CHECKPOINT_INTERVAL"):
        load_settings()


def test_time_window_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match="earlier than"):
        load_settings({"migration_created_after": "2026-02-01", "migration_created_before": "2026-01-01"})


def test_time_parsing_dates_and_zones() -> None:
    settings = load_settings(
        {"migration_created_after": "2026-01-31", "migration_created_before": "2026-02-01T12:30:00+02:00"}
    )
    assert settings.migration_created_after == datetime(2026, 1, 31, tzinfo=UTC)
    assert settings.migration_created_before == datetime(2026, 2, 1, 10, 30, tzinfo=UTC)
    naive = load_settings({"migration_created_after": "2026-01-31T08:00:00"})
    assert naive.migration_created_after == datetime(2026, 1, 31, 8, tzinfo=UTC)


def test_unknown_config_key_is_an_error(tmp_path: Path) -> None:
    config = write(tmp_path / "cfg.yaml", "MIGRATION_BATCH_SIZ: 5\n")
    with pytest.raises(ConfigError, match="unknown setting 'MIGRATION_BATCH_SIZ'"):
        load_settings(config_file=config)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("cfg.yaml", "a: [1, 2\n", "not valid yaml"),
        ("cfg.json", "{nope", "not valid json"),
        ("cfg.yaml", "- 1\n- 2\n", "expected a mapping"),
    ],
)
def test_malformed_config_files(tmp_path: Path, name: str, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(config_file=write(tmp_path / name, text))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_settings(config_file=tmp_path / "absent.yaml")


def test_missing_key_names_the_variable() -> None:
    settings = load_settings()
    with pytest.raises(ConfigError, match="BT_SOURCE_API_KEY is not set"):
        settings.api_key("source")
    with pytest.raises(ConfigError, match="BT_DEST_API_KEY is not set"):
        settings.api_key("dest")


def test_blank_key_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BT_DEST_API_KEY", "   ")
    with pytest.raises(ConfigError, match="BT_DEST_API_KEY is not set"):
        load_settings().api_key("dest")


def test_keys_never_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-live-0123456789abcdefWXYZ"
    monkeypatch.setenv("BT_SOURCE_API_KEY", secret)
    settings = load_settings()
    assert settings.api_key("source") == secret
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert secret not in text
    assert scrub(f"boom {secret} boom") == "boom sk-…WXYZ boom"


def test_preview_shapes() -> None:
    assert preview("sk-abcdefgh1234") == "sk-…1234"
    assert preview("abcdefghijkl") == "…ijkl"
    assert preview("short") == "…****"
    assert preview(None) == "<unset>"


def test_split_list_csv_quoting_and_repeats() -> None:
    assert split_list('"Acme, Inc.",Beta, Gamma') == ["Acme, Inc.", "Beta", "Gamma"]
    assert split_list(["A,B", "C", "A"]) == ["A", "B", "C"]
    assert split_list(None) == []


def test_url_trailing_slash_is_trimmed() -> None:
    assert load_settings({"bt_dest_url": "http://localhost:8000/"}).bt_dest_url == "http://localhost:8000"
