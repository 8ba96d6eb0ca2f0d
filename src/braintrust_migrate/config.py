"""Settings: typed, range-checked, and loaded with a fixed precedence.

Precedence, highest first: CLI flags > environment > `.env` in the working
directory > `--config` file (YAML or JSON) > defaults.
"""

from __future__ import annotations

import contextvars
import csv
import ipaddress
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from braintrust_migrate import redact
from braintrust_migrate.catalog import ALL_RESOURCES

DEFAULT_URL = "https://api.braintrust.dev"

# Names users know from the product that are not types of their own: agents are graph
# functions, migrated within `functions`.
RESOURCE_ALIASES: dict[str, str] = {"agents": "functions"}


class ConfigError(Exception):
    """A user mistake in configuration. The message is one line, safe to print."""


def _allowed(text: str, flag: str | None = None) -> dict[str, Any]:
    return {"allowed": text, "flag": flag}


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (also IPv4-mapped): traffic that never leaves the machine."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


class Settings(BaseSettings):
    """Every setting of the tool. Field names are the env var names in lower case."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    bt_source_api_key: SecretStr | None = Field(
        None,
        description="API key of the source organization (read access).",
        json_schema_extra=_allowed("an API key string"),
    )
    bt_source_url: str = Field(
        DEFAULT_URL,
        description="API URL of the source organization's data plane.",
        json_schema_extra=_allowed("an http(s) URL", "--source-url"),
    )
    bt_source_org_name: str | None = Field(
        None,
        description="Source org name, needed when the source key sees several orgs.",
        json_schema_extra=_allowed("an organization name", "--source-org"),
    )
    bt_dest_api_key: SecretStr | None = Field(
        None,
        description="API key of the destination organization (write access).",
        json_schema_extra=_allowed("an API key string"),
    )
    bt_dest_url: str = Field(
        DEFAULT_URL,
        description="API URL of the destination organization's data plane.",
        json_schema_extra=_allowed("an http(s) URL", "--dest-url"),
    )
    bt_dest_org_name: str | None = Field(
        None,
        description="Destination org name, needed when the destination key sees several orgs.",
        json_schema_extra=_allowed("an organization name", "--dest-org"),
    )
    bt_allow_insecure_http: bool = Field(
        False,
        description="Allow plain http:// API URLs (and redirects) to non-loopback hosts; "
        "the API keys then travel unencrypted. Loopback hosts are always allowed.",
        json_schema_extra=_allowed("true or false", "--allow-insecure-http"),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO",
        description="Lowest level of log lines written to stderr.",
        json_schema_extra=_allowed("DEBUG, INFO, WARNING or ERROR", "--log-level"),
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log line format on stderr.",
        json_schema_extra=_allowed("text or json", "--log-format"),
    )
    migration_batch_size: int = Field(
        100,
        ge=1,
        le=1000,
        description="Objects per list page when reading object lists.",
        json_schema_extra=_allowed("an integer from 1 to 1000", "--batch-size"),
    )
    migration_retry_attempts: int = Field(
        3,
        ge=0,
        le=20,
        description="Retries of a failed request (429, 408, 5xx, network); 0 disables retrying.",
        json_schema_extra=_allowed("an integer from 0 to 20", "--retry-attempts"),
    )
    migration_retry_delay: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Base delay in seconds of the exponential backoff (full jitter).",
        json_schema_extra=_allowed("a number of seconds from 0 to 60", "--retry-delay"),
    )
    migration_retry_max_delay: float = Field(
        30.0,
        ge=0,
        le=600,
        description="Cap in seconds on one backoff delay (a longer Retry-After is still honoured).",
        json_schema_extra=_allowed("a number of seconds from 0 to 600", "--retry-max-delay"),
    )
    migration_max_concurrent: int = Field(
        4,
        ge=1,
        le=64,
        description="Projects migrated at once.",
        json_schema_extra=_allowed("an integer from 1 to 64", "--max-concurrent"),
    )
    migration_max_concurrent_resources: int = Field(
        16,
        ge=1,
        le=256,
        description="Objects of one type migrated at once in a project (and event streams at once).",
        json_schema_extra=_allowed("an integer from 1 to 256", "--max-concurrent-resources"),
    )
    migration_max_concurrent_requests: int = Field(
        20,
        ge=1,
        le=512,
        description="In-flight HTTP requests per side, shared by everything using that side.",
        json_schema_extra=_allowed("an integer from 1 to 512", "--max-concurrent-requests"),
    )
    migration_checkpoint_interval: int = Field(
        50,
        ge=1,
        le=1_000_000,
        description="Completed objects or event batches between two state checkpoints.",
        json_schema_extra=_allowed("an integer from 1 to 1000000", "--checkpoint-interval"),
    )
    migration_state_dir: Path = Field(
        Path("./checkpoints"),
        description="Folder holding migration state, reports and id maps.",
        json_schema_extra=_allowed("a directory path", "--state-dir"),
    )
    migration_resources: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Resource types to migrate (comma-separated); unset means all. "
        "`agents` (graph functions) selects `functions`.",
        json_schema_extra=_allowed(
            "comma-separated names from: "
            + ", ".join(ALL_RESOURCES)
            + "; agents selects functions (agents are graph functions)",
            "--resources",
        ),
    )
    migration_projects: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Project names to migrate (comma-separated, CSV quoting); empty means all.",
        json_schema_extra=_allowed("comma-separated project names", "--projects"),
    )
    migration_project_map: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Rename projects on the way: 'Old name=New name' (the flag repeats; the env takes "
        "comma-separated pairs, CSV quoting; a config file may give a mapping).",
        json_schema_extra=_allowed("'Old name=New name' pairs", "--project-map"),
    )
    migration_project_map_file: Path | None = Field(
        None,
        description="A file of project renames: a JSON or YAML mapping of old to new names, "
        "or one 'Old name=New name' per line; --project-map wins over it.",
        json_schema_extra=_allowed("a file path", "--project-map-file"),
    )
    migration_project_prefix: str = Field(
        "",
        description="Put this before the name of every project not renamed by a project map.",
        json_schema_extra=_allowed("any text, e.g. acme/", "--project-prefix"),
    )
    migration_overlap_rows: bool = Field(
        False,
        description="Start each container's rows as soon as it exists, while other objects are still "
        "being written (default: rows after the objects). Measured: the medium org at 100 ms 1.45x "
        "its yardstick against 1.6x; with 100k rows at 20 ms 7% less wall but 110 MiB more peak memory.",
        json_schema_extra=_allowed("true or false", "--overlap-rows"),
    )
    migration_shared_read_rows: int = Field(
        1000,
        ge=0,
        le=100_000,
        description="Containers with at most this many rows are copied together: up to 100 of them read "
        "through one BTQL query and written through the cross-object insert, each keeping its own "
        "checkpoint. 0 reads every container on its own.",
        json_schema_extra=_allowed("an integer from 0 to 100000", "--shared-read-rows"),
    )
    migration_follow_interval: float = Field(
        2.0,
        ge=0.1,
        le=3600,
        description="Seconds between passes of migrate --follow.",
        json_schema_extra=_allowed("a number of seconds from 0.1 to 3600", "--follow-interval"),
    )
    migration_shard: str | None = Field(
        None,
        description="Scale out (README: Scaling out): 'objects' runs the object phase alone; I/N copies "
        "the rows of the event containers shard I of N owns (0 <= I < N).",
        json_schema_extra=_allowed("objects, or I/N with 0 <= I < N (e.g. 0/4)", "--shard"),
    )
    migration_created_after: datetime | None = Field(
        None,
        description="Only data created at or after this date/time (inclusive).",
        json_schema_extra=_allowed("a date (2026-01-31) or an ISO 8601 time", "--created-after"),
    )
    migration_created_before: datetime | None = Field(
        None,
        description="Only data created before this date/time (exclusive).",
        json_schema_extra=_allowed("a date (2026-01-31) or an ISO 8601 time", "--created-before"),
    )
    migration_event_page_size: int = Field(
        1000,
        ge=10,
        le=10_000,
        description="Event rows per BTQL page when reading logs, experiment and dataset rows.",
        json_schema_extra=_allowed("an integer from 10 to 10000", "--page-size"),
    )
    migration_insert_batch_rows: int = Field(
        1000,
        ge=1,
        le=10_000,
        description="Most event rows in one insert request.",
        json_schema_extra=_allowed("an integer from 1 to 10000", "--insert-batch-rows"),
    )
    migration_insert_max_bytes: int = Field(
        5_767_168,
        ge=65_536,
        le=67_108_864,
        description="Most bytes in one insert request (5.5 MiB: the hosted API's 6 MiB limit with headroom); "
        "lowered automatically when the destination's /version says so.",
        json_schema_extra=_allowed("a byte count from 65536 to 67108864", "--insert-max-bytes"),
    )
    migration_max_bytes_in_flight: int = Field(
        100_663_296,  # 96 MiB: plus the ~100 MB of bodies it does not count, peak RSS stays < 300 MB
        ge=1_048_576,
        le=17_179_869_184,
        description="Event data held in memory at once across all streams (read but not yet written;"
        " rows count as 3 times their JSON size, what they take once parsed).",
        json_schema_extra=_allowed("a byte count from 1048576 to 17179869184", "--max-bytes-in-flight"),
    )
    migration_max_response_bytes: int = Field(
        268_435_456,
        ge=1_048_576,
        le=17_179_869_184,
        description="Largest decoded body of one API response; reading stops there and that request "
        "fails (guards against compressed answers that decode to gigabytes).",
        json_schema_extra=_allowed("a byte count from 1048576 to 17179869184", "--max-response-bytes"),
    )
    migration_copy_attachments: bool = Field(
        False,
        description="Copy braintrust_attachment blobs to the destination and rewrite their references.",
        json_schema_extra=_allowed("true or false", "--copy-attachments"),
    )
    migration_attachment_max_bytes: int = Field(
        104_857_600,
        ge=1,
        le=10_737_418_240,
        description="Largest attachment copied; bigger ones are reported and keep their source reference.",
        json_schema_extra=_allowed("a byte count from 1 to 10737418240", "--attachment-max-bytes"),
    )
    migration_request_timeout: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Seconds to wait for a response to one request (read timeout).",
        json_schema_extra=_allowed("a number of seconds above 0, at most 3600", "--timeout"),
    )
    migration_connect_timeout: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds to wait for a connection to be established.",
        json_schema_extra=_allowed("a number of seconds above 0, at most 600", "--connect-timeout"),
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("bt_source_url", "bt_dest_url")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL")
        try:
            parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
        except ValueError:
            raise ValueError("not an http(s) URL (bad port)") from None
        if not is_api_root(parts.hostname, parts.path):
            # Request paths (/v1/..., /environment) are appended to this URL, so "/v1" would 404.
            shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
            raise ValueError(
                f"{env_name(info.field_name or '')} should be the API root (e.g. {DEFAULT_URL}), not {shown}"
            )
        return value.rstrip("/")

    @field_validator(
        "bt_source_api_key",
        "bt_dest_api_key",
        "bt_source_org_name",
        "bt_dest_org_name",
        "migration_project_map_file",
        mode="before",
    )
    @classmethod
    def _blank_key_is_unset(cls, value: Any) -> Any:
        # `NAME=` (an uncommented .env.example line) means unset, not an empty name or key.
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("migration_resources", mode="before")
    @classmethod
    def _split_resources(cls, value: Any) -> Any:
        names = split_list(value)
        unknown = [name for name in names if name not in ALL_RESOURCES and name not in RESOURCE_ALIASES]
        if unknown:
            raise ValueError(f"unknown resource type {', '.join(map(repr, unknown))}")
        # Unset (or an empty variable, the .env convention) means all; a value that is given but
        # names nothing ("", ",") is a mistake, not a request for everything.
        given = [value] if isinstance(value, str) and value.strip() else value
        if not names and isinstance(given, list | tuple) and given:
            raise ValueError("names no resource type; leave it unset to migrate every type")
        return list(dict.fromkeys(RESOURCE_ALIASES.get(name, name) for name in names))

    @field_validator("migration_projects", mode="before")
    @classmethod
    def _split_projects(cls, value: Any) -> Any:
        return split_list(value, strip=False)

    @field_validator("migration_project_map", mode="before")
    @classmethod
    def _parse_project_map(cls, value: Any) -> Any:
        if value is None or isinstance(value, dict):
            return value or {}
        return parse_rename_pairs(split_list(value, strip=False))

    @field_validator("migration_shard", mode="before")
    @classmethod
    def _parse_shard(cls, value: Any) -> Any:
        return normalize_shard(value)

    @field_validator("migration_created_after", "migration_created_before", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> Any:
        return parse_time(value)

    @model_validator(mode="after")
    def _check_window(self) -> Settings:
        after, before = self.migration_created_after, self.migration_created_before
        if after and before and after >= before:
            raise ValueError("MIGRATION_CREATED_AFTER must be earlier than MIGRATION_CREATED_BEFORE")
        return self

    @model_validator(mode="after")
    def _check_plain_http(self) -> Settings:
        if self.bt_allow_insecure_http:
            return self
        for var, url in (("BT_SOURCE_URL", self.bt_source_url), ("BT_DEST_URL", self.bt_dest_url)):
            parts = urlsplit(url)
            if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
                raise ValueError(
                    f"{var}={url} is plain http to a non-loopback host: the API key would travel "
                    "unencrypted; use https, or set BT_ALLOW_INSECURE_HTTP=true (--allow-insecure-http)"
                )
        return self

    def model_post_init(self, __context: Any) -> None:
        for key in (self.bt_source_api_key, self.bt_dest_api_key):
            redact.register_secret(key.get_secret_value() if key else None)

    def api_key(self, side: str) -> str:
        """The key for 'source' or 'dest', or a ConfigError saying which variable to set."""
        secret = self.bt_source_api_key if side == "source" else self.bt_dest_api_key
        if secret is None:
            var = "BT_SOURCE_API_KEY" if side == "source" else "BT_DEST_API_KEY"
            raise ConfigError(
                f"{var} is not set: export {var}=<api key> or add it to .env "
                f"(the {'source' if side == 'source' else 'destination'} organization's API key)"
            )
        return secret.get_secret_value()

    def url(self, side: str) -> str:
        return self.bt_source_url if side == "source" else self.bt_dest_url

    def org_name(self, side: str) -> str | None:
        return self.bt_source_org_name if side == "source" else self.bt_dest_org_name


def is_api_root(host: str, path: str) -> bool:
    """False for a URL that points inside the API: a `/v1` segment (a pasted endpoint such as
    .../v1/organization), or any path on Braintrust's own hosts. Other hosts may serve the API
    under a path prefix (a self-hosted data plane behind a reverse proxy), so that stays allowed."""
    segments = [part for part in path.split("/") if part]
    if not segments:
        return True
    host = host.rstrip(".").lower()
    if host == "braintrust.dev" or host.endswith(".braintrust.dev"):
        return False
    return "v1" not in (part.lower() for part in segments)


def split_list(value: Any, *, strip: bool = True) -> list[str]:
    """Comma-separated names, CSV quoting allowed ("A, Inc.",B); lists are flattened.

    With strip=False, names keep their spaces (project names may have them); the
    caller then matches loosely.
    """
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError("expected a comma-separated string")
        for row in csv.reader([item], skipinitialspace=strip):
            names.extend((name.strip() if strip else name) for name in row if name.strip())
    return list(dict.fromkeys(names))


SHARD_OBJECTS = "objects"


def normalize_shard(value: Any) -> str | None:
    """`objects`, or `I/N` with 0 <= I < N, as the canonical text (unset: None)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().lower()
    if text == SHARD_OBJECTS:
        return text
    index, sep, count = text.partition("/")
    if not (sep and index.strip().isdigit() and count.strip().isdigit()):
        raise ValueError(f"{value!r} is not I/N (e.g. 0/4) or 'objects'")
    i, n = int(index), int(count)
    if n < 1 or i >= n:
        raise ValueError(f"{value!r} needs 0 <= I < N and N >= 1")
    return f"{i}/{n}"


def parse_rename_pairs(items: list[str]) -> dict[str, str]:
    """'Old=New' strings as a mapping (split at the first '='); both names are required."""
    pairs: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"{item!r} is not 'Old name=New name'")
        old, new = old.strip(), new.strip()
        if pairs.get(old, new) != new:
            raise ValueError(f"{old!r} is mapped twice, to {pairs[old]!r} and {new!r}")
        pairs[old] = new
    return pairs


def parse_time(value: Any) -> Any:
    """A date means its midnight UTC; a time without a zone is UTC."""
    if value is None or isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                return datetime(day.year, day.month, day.day, tzinfo=UTC)
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("not a date or ISO 8601 time") from None
    else:
        return value
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


SETTING_FIELDS: dict[str, FieldInfo] = dict(Settings.model_fields)


def env_name(field: str) -> str:
    return field.upper()


def flag_name(field: str) -> str | None:
    extra = SETTING_FIELDS[field].json_schema_extra
    return extra.get("flag") if isinstance(extra, dict) else None  # type: ignore[return-value]


def allowed_text(field: str) -> str:
    extra = SETTING_FIELDS[field].json_schema_extra
    return str(extra.get("allowed")) if isinstance(extra, dict) else "a valid value"


# The config file's data for the load in progress (pydantic-settings builds sources per class).
_config_file_data: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "config_file_data", default=None
)


class _ConfigFileSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_config_file_data.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_config_file_data.get() or {})


class _LayeredSettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, dotenv_settings, _ConfigFileSource(settings_cls)


def read_config_file(path: Path) -> dict[str, Any]:
    """Settings from a YAML or JSON file, keyed by env var name (any case). Unknown keys fail."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"--config {path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {first_line}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of setting names to values")
    settings: dict[str, Any] = {}
    for key, value in data.items():
        field = str(key).strip().lower()
        if field not in SETTING_FIELDS:
            raise ConfigError(
                f"--config {path}: unknown setting {key!r}; known settings: "
                + ", ".join(env_name(name) for name in SETTING_FIELDS)
            )
        settings[field] = value
    return settings


def load_settings(
    overrides: dict[str, Any] | None = None,
    *,
    config_file: Path | None = None,
    env_file: Path | None = Path(".env"),
) -> Settings:
    """Build the settings from every layer, or raise ConfigError with a one-line message."""
    file_data = read_config_file(config_file) if config_file else {}
    flags = {key: value for key, value in (overrides or {}).items() if value is not None}
    token = _config_file_data.set(file_data)
    try:
        return _LayeredSettings(_env_file=env_file, **flags)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    finally:
        _config_file_data.reset(token)


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if field not in SETTING_FIELDS:
            lines.append(f"invalid settings: {reason}")
            continue
        if reason.startswith(f"{env_name(field)} "):  # already a whole sentence naming the setting
            lines.append(reason)
            continue
        value = error.get("input")
        shown = redact.preview(str(value)) if field.endswith("api_key") else repr(value)
        flag = flag_name(field)
        name = f"{env_name(field)} ({flag})" if flag else env_name(field)
        lines.append(f"invalid {name}={shown}: {reason}; allowed: {allowed_text(field)}")
    return "\n".join(lines)
