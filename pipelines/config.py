"""The pipeline's settings: one typed model, read from the environment (and a `.env` file) once by each entry point.

Every variable the pipeline and its Dagster code location read is a field of `Settings`, named by its variable
(README.md's table and .env.example list them; a test keeps the three in agreement). `Settings.from_env()` reads
and checks them all at once: a bad value is refused with one line naming the variable, what it takes and what it
got, before anything runs. A command, the code location, a run or a schedule tick reads them once and hands the
object (or Dagster resources configured from it) down; no other module reads the environment for them.

`Settings(...)` built in code takes its arguments and the defaults only, never the environment, so a test or a
script says everything it depends on. The embedded provider reads its own variables (it is a program of its own).
"""

import ipaddress
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import annotated_types
from pydantic import Field, HttpUrl, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import core_schema
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from pipelines.lake.filesystem import is_remote, lake_root
from pipelines.lake.mds_versions import MDS_VERSIONS, MdsVersion
from pipelines.reports.threshold import DEFAULT_K
from pipelines.scrub import remember_secret

HISTORY_START_ENV = "FLEETLAKE_HISTORY_START"
LEAD_IN_HOURS_ENV = "FLEETLAKE_LEAD_IN_HOURS"
SIMULATOR_CLIENT_ID = "fleetlake"
SIMULATOR_CLIENT_SECRET = "fleetlake-secret"  # the embedded provider's, published
SIMULATOR_AUTH_TOKEN = "fleetlake-maas-token"  # the embedded provider's, published
SIMULATOR_URL = "http://127.0.0.1:8400"


class Secret:
    """A credential that never shows itself in logs, reprs, metadata or exceptions."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember_secret(value)  # and should it reach an error text some other way, it is masked there

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        """A setting's text becomes a Secret; a Secret stays one (so settings built in code can pass either)."""

        def coerce(value: object) -> "Secret":
            if isinstance(value, Secret):
                return value
            if isinstance(value, str):
                return cls(value)
            raise ValueError("a text")

        return core_schema.no_info_plain_validator_function(coerce)


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable, what it takes and what it got."""


def _variable(env: str, default: Any = None, *, factory: Any = None, expects: str = "") -> Any:
    """A setting read from the variable `env`; `expects` says what a bad value should have been (derived from the
    type and bounds when empty)."""
    extra: dict[str, Any] = {"expects": expects} if expects else {}
    if factory is not None:
        return Field(default_factory=factory, validation_alias=env, json_schema_extra=extra)
    return Field(default, validation_alias=env, json_schema_extra=extra)


def _is_loopback(url: str) -> bool:
    """Whether `url` names this machine: localhost, 127.0.0.0/8 or ::1."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_zone_timezones(text: str) -> dict[str, str]:
    """`zone:Area/City,...` as {zone_id: time zone}; a pair that is not one, or a name that is not an IANA time
    zone, raises ValueError saying which."""
    found: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        zone, sep, name = (s.strip() for s in item.partition(":"))
        if not sep or not zone or not name:
            raise ValueError(f"{item!r} is not zone:Area/City")
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"zone {zone}: {name!r} is not an IANA time zone") from None
        found[zone] = name
    return found


URL = "an http:// or https:// URL"
PositiveSeconds = Annotated[float, annotated_types.Ge(1)]


class Settings(BaseSettings):
    """Every setting of the pipeline, by its environment variable (see README.md's table)."""

    model_config = SettingsConfigDict(
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        case_sensitive=True,
        extra="ignore",  # a .env also holds other programs' variables (DAGSTER_HOME, the provider's)
        allow_inf_nan=False,
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        validate_default=False,  # the defaults are this module's own; a given value is always checked
    )

    api_base_url: str = _variable("VOI_API_BASE_URL", SIMULATOR_URL, expects=URL)
    """The light-integration API (token, MDS, GBFS)."""
    maas_base_url: str = _variable("VOI_MAAS_BASE_URL", "", expects=URL)
    """Empty: the light-integration API's."""
    client_id: str = _variable("VOI_CLIENT_ID", SIMULATOR_CLIENT_ID)
    client_secret: Secret = _variable("VOI_CLIENT_SECRET", factory=lambda: Secret(SIMULATOR_CLIENT_SECRET))
    auth_token: Secret = _variable("VOI_AUTH_TOKEN", factory=lambda: Secret(SIMULATOR_AUTH_TOKEN))
    zones: Annotated[tuple[str, ...], NoDecode] = _variable("FLEETLAKE_ZONES", (), expects="zone ids and commas")
    """Empty means: discover them from the zone API."""
    lake_dir: Path = _variable("FLEETLAKE_LAKE_DIR", Path("data/lake"), expects="a folder or s3://bucket/prefix")
    """A local folder, or `s3://bucket/prefix` in an S3-compatible store (pipelines/lake/filesystem.py)."""
    warehouse: Path = _variable("FLEETLAKE_WAREHOUSE", Path("data/warehouse.duckdb"), expects="a file path")
    reports_dir: Path = _variable("FLEETLAKE_REPORTS_DIR", Path("data/reports"), expects="a folder")
    report_h3_resolution: Annotated[int, annotated_types.Ge(0), annotated_types.Le(11)] = _variable(
        "FLEETLAKE_REPORT_H3_RESOLUTION", 10
    )
    """The H3 resolution of the report maps' cells: 10 has edges of about 76 m, 9 about 200 m; finer than 11 (about
    29 m) would single out a doorway."""
    request_deadline_s: PositiveSeconds = _variable("FLEETLAKE_REQUEST_DEADLINE_SECONDS", 120.0)
    """The longest one request may take, body included (a body trickling a byte at a time never times out)."""
    max_pages: Annotated[int, annotated_types.Ge(1)] = _variable("FLEETLAKE_MAX_PAGES", 1000)
    """Most `links.next` pages followed for one request window; a chain beyond fails its partition."""
    max_retry_after_s: Annotated[float, annotated_types.Ge(0)] = _variable("FLEETLAKE_MAX_RETRY_AFTER_SECONDS", 300.0)
    """Longest Retry-After honoured; a longer one fails the request (its partition) instead of pausing all."""
    max_response_bytes: Annotated[int, annotated_types.Ge(1024)] = _variable(
        "FLEETLAKE_MAX_RESPONSE_BYTES", 256 * 2**20
    )
    """Largest response body, decompressed, read into memory; a larger one (a gzip bomb) fails its request."""
    history_start: date = _variable(HISTORY_START_ENV, date(2024, 1, 1), expects="a date, YYYY-MM-DD")
    """The first UTC day the hourly (and monthly) partitions hold: the start of the city's history."""
    lead_in_hours: Annotated[int, annotated_types.Ge(0)] = _variable(LEAD_IN_HOURS_ENV, 48)
    """Hours a backfill reads before its window, and the first hours of a zone's history (or of a resumption after
    a gap) flagged warm-up: vehicles silent longer than this are not known (the MDS methodology's 48 hours)."""
    lookback_hours: Annotated[int, annotated_types.Ge(0)] = _variable("FLEETLAKE_LOOKBACK_HOURS", 6)
    """Hours each hourly run re-ingests, for records that arrive late."""
    not_ready_retry_s: Annotated[float, annotated_types.Ge(0)] = _variable("FLEETLAKE_NOT_READY_RETRY_SECONDS", 300.0)
    """How long an hourly run waits before asking again for an hour the provider answered 202."""
    not_ready_max_retries: Annotated[int, annotated_types.Ge(0)] = _variable("FLEETLAKE_NOT_READY_MAX_RETRIES", 12)
    """How often it asks again before the run fails."""
    max_runtime_s: Annotated[int, annotated_types.Ge(1)] | None = _variable(
        "FLEETLAKE_MAX_RUNTIME_SECONDS", None, expects="a positive whole number of seconds"
    )
    """One maximum runtime for every ingesting run; None: each job's own (assets/run_limits.py)."""
    gbfs_snapshot_cron: str = _variable(
        "FLEETLAKE_GBFS_SNAPSHOT_CRON", "*/5 * * * *", expects="a cron schedule of five fields, e.g. '*/5 * * * *'"
    )
    """When GBFS and parking-occupancy snapshots are taken."""
    schedules_running: bool = _variable("FLEETLAKE_SCHEDULES_RUNNING", False, expects="true or false")
    """Every schedule starts switched on, so the daemon runs it as soon as it starts; off (the default), each is
    switched on in the UI (Automation) or with `dagster schedule start`, and a new deployment fetches nothing until
    someone decides it should."""
    policy_dir: Path | None = _variable("FLEETLAKE_POLICY_DIR", None, expects="a folder")
    """MDS Policy and Geography JSON files (see pipelines/warehouse/policy.py); None: the built-in defaults only."""
    idle_limit_hours: Annotated[float, annotated_types.Ge(0)] = _variable("FLEETLAKE_IDLE_LIMIT_HOURS", 72.0)
    """The idle limit when no policy sets one."""
    zone_timezones: Annotated[dict[str, str], NoDecode] = _variable(
        "FLEETLAKE_ZONE_TIMEZONES",
        factory=dict,
        expects="zone:Area/City pairs separated by commas, e.g. '1:Europe/Stockholm,145:Europe/Berlin'",
    )
    """Zones' time zones by the operator's word, winning over GBFS and the zone's geometry."""
    warehouse_memory: str = _variable(
        "FLEETLAKE_WAREHOUSE_MEMORY", "3GB", expects="a DuckDB memory limit, e.g. '3GB' or '512MiB'"
    )
    """Memory DuckDB may use while building (it spills to disk beyond)."""
    duckdb_threads: Annotated[int, annotated_types.Ge(1)] | None = _variable(
        "FLEETLAKE_DUCKDB_THREADS", None, expects="a positive whole number"
    )
    """Threads DuckDB may run a build's queries on; None: one per core. Fewer where several builds share the cores
    (other processes building at once): on a small warehouse each build then spends less on starting and
    synchronising threads than it would gain from them."""
    log_file: Path = _variable("FLEETLAKE_LOG_FILE", Path("data/fleetlake.log"), expects="a file path")
    """Where the command line writes the detail behind a one-line error."""
    mds_versions: Annotated[tuple[tuple[str, MdsVersion], ...], NoDecode] = _variable(
        "FLEETLAKE_MDS_VERSIONS",
        (),
        expects="zone:version pairs separated by commas (versions 2.0, 1.2, 0.4), e.g. '9:1.2,31:0.4'",
    )
    """(zone id, MDS version) of the zones read in MDS 1.2 or 0.4; every other zone is read in 2.0."""
    legacy_mds_base_url: str = _variable("VOI_LEGACY_MDS_BASE_URL", "", expects=URL)
    """The MDS 1.2 and 0.4 host (the seed's `mds.voiapp.io`); empty: the light-integration API's."""
    gbfs_versions: Annotated[tuple[str, ...], NoDecode] = _variable(
        "FLEETLAKE_GBFS_VERSIONS", ("3.0",), expects="3.0, 2.3, '3.0,2.3' or 'both'"
    )
    """The GBFS versions snapshots read: 3.0 (per zone), 2.3 (account-wide, placed in zones by geometry) or both."""
    executor: Literal["multiprocess", "in_process", "celery"] = _variable(
        "FLEETLAKE_EXECUTOR", "multiprocess", expects="multiprocess, in_process or celery"
    )
    """How zone_backfill_job's steps run (assets/executors.py, docs/scale-out.md)."""
    max_processes: Annotated[int, annotated_types.Ge(1)] | None = _variable(
        "FLEETLAKE_MAX_PROCESSES", None, expects="a positive whole number"
    )
    """The multiprocess executor's most steps at once; None: the machine's cores."""
    celery_broker: str = _variable("FLEETLAKE_CELERY_BROKER", "", expects="a Celery broker URL, e.g. redis://host/0")
    """The Celery broker of FLEETLAKE_EXECUTOR=celery."""
    celery_backend: str = _variable("FLEETLAKE_CELERY_BACKEND", "", expects="a Celery result backend URL")
    """The Celery result backend; empty: the broker."""
    build_queue: str = _variable("FLEETLAKE_BUILD_QUEUE", "dagster", expects="a Celery queue name")
    """The Celery queue of the build step: with a shared warehouse catalog any worker may build; without one, the
    machine that holds the warehouse listens on it."""
    warehouse_catalog: str = _variable(
        "FLEETLAKE_WAREHOUSE_CATALOG", "", expects="a Postgres URL, e.g. postgresql://user:secret@host:5432/db"
    )
    """A warehouse several machines share (pipelines/warehouse/shared.py): which build is published and the build
    lock, in this Postgres; each build is stored under the lake (`<lake>/_warehouse/`). Empty: this machine's
    file and file lock alone."""
    step_values_dir: str = _variable("FLEETLAKE_STEP_VALUES_DIR", "", expects="a folder or s3://bucket/prefix")
    """Where steps on other machines hand each other values; empty: beside a lake in a bucket, else the instance's
    storage folder."""

    # The MDS Metrics API (`fleetlake serve`): the key its bearer tokens are signed with (HS256), and k, the
    # fewest trips a count may show (fewer, zero included, are returned as -1).
    metrics_jwt_secret: Secret = _variable("FLEETLAKE_METRICS_JWT_SECRET", factory=lambda: Secret(""))
    metrics_k: Annotated[int, annotated_types.Ge(1)] = _variable("FLEETLAKE_METRICS_K", DEFAULT_K)
    insurance_trips: bool = _variable("FLEETLAKE_INSURANCE_TRIPS", False, expects="true or false")
    """Ingest the insurance trips (personal data: licence plates, riders' ride counts); off unless set. They are
    kept apart from everything a city sees, in FLEETLAKE_INSURANCE_DIR (docs/privacy.md)."""
    insurance_dir: Path = _variable("FLEETLAKE_INSURANCE_DIR", Path("data/insurance"), expects="a local folder")
    """The insurance trips' own lake and warehouse file, owner-only; a local folder, never the city's lake."""
    insurance_retention_days: Annotated[int, annotated_types.Ge(1)] = _variable(
        "FLEETLAKE_INSURANCE_RETENTION_DAYS", 30
    )
    """Days an insurance trip is kept after the hour it ended; older ones are purged from lake and warehouse."""

    ENVIRONMENT: ClassVar[bool] = False
    """Whether this class reads the environment (the subclass `from_env` builds does)."""

    def __init__(self, **values: Any) -> None:
        """As BaseSettings, but a bad value is a SettingsError naming its variable (see `describe`)."""
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise SettingsError(describe(e)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Settings built in code take their arguments and the defaults only; `from_env` reads the environment,
        then the `.env` file (a variable set in the environment wins)."""
        if cls.ENVIRONMENT:
            return (init_settings, env_settings, dotenv_settings)
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        """White space around a value is dropped, and a variable set to nothing is not set (its default holds)."""
        if not isinstance(data, Mapping):
            return data
        stripped = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return {k: v for k, v in stripped.items() if v != ""}

    @field_validator("api_base_url", "maas_base_url", "legacy_mds_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value == "":
            return value
        try:
            TypeAdapter(HttpUrl).validate_python(value)
        except ValidationError:
            raise ValueError(URL) from None
        return value.rstrip("/")

    @field_validator("lake_dir", mode="plain")
    @classmethod
    def _lake(cls, value: Any) -> Path:
        """A folder stays a Path; `s3://bucket/prefix` becomes a path in the bucket (a Path would lose its `//`)."""
        return lake_root(value)

    @field_validator("insurance_dir", mode="plain")
    @classmethod
    def _insurance_dir(cls, value: Any) -> Path:
        """Owner-only permissions are a local file system's: a bucket cannot hold the insurance trips."""
        if is_remote(value):
            raise ValueError("a local folder; object storage has no owner-only files") from None
        return Path(value)

    @field_validator("zones", mode="before")
    @classmethod
    def _zone_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(z.strip() for z in value.split(",") if z.strip())
        return value

    @field_validator("zone_timezones", mode="before")
    @classmethod
    def _timezones(cls, value: Any) -> Any:
        return parse_zone_timezones(value) if isinstance(value, str) else value

    @field_validator("gbfs_versions", mode="before")
    @classmethod
    def _gbfs_versions(cls, value: Any) -> Any:
        from pipelines.gbfs_v2 import parse_gbfs_versions

        return parse_gbfs_versions(value if isinstance(value, str) else ",".join(value))

    @field_validator("gbfs_snapshot_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        """Dagster's own reading of a cron schedule decides (the one the schedule is defined with)."""
        import dagster as dg  # only when the variable is set (defaults are not validated): commands need not load it

        try:
            dg.ScheduleDefinition(name="check", job_name="check", cron_schedule=value)
        except dg.DagsterInvalidDefinitionError:
            raise ValueError("not a cron schedule Dagster reads") from None
        return value

    @field_validator("warehouse_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        """DuckDB's own reading of a memory limit decides (the one the build sets)."""
        import duckdb

        with duckdb.connect() as con:
            try:
                con.execute("set memory_limit = $limit", {"limit": value})
            except duckdb.Error:
                raise ValueError("not a memory size DuckDB reads") from None
        return value

    @field_validator("mds_versions", mode="before")
    @classmethod
    def _mds_versions(cls, value: Any) -> Any:
        return parse_mds_versions(value) if isinstance(value, str) else value

    @property
    def legacy_mds_url(self) -> str:
        return self.legacy_mds_base_url or self.api_base_url

    def mds_version(self, zone: str) -> MdsVersion:
        """The MDS version the zone is read in."""
        return dict(self.mds_versions).get(zone, "2.0")

    @model_validator(mode="after")
    def _insurance_apart(self) -> Self:
        """The insurance trips' folder shares no folder with what a city sees: not inside its lake or reports, and
        holding neither (whoever may read those would read the insurance trips too)."""
        mine = self.insurance_dir.resolve()
        for field in ("lake_dir", "reports_dir"):
            theirs = getattr(self, field)
            if is_remote(theirs):
                continue
            theirs = Path(theirs).resolve()
            if mine == theirs or mine.is_relative_to(theirs) or theirs.is_relative_to(mine):
                raise ValueError(
                    f"{self.variable('insurance_dir')} ({self.insurance_dir}) must be a folder of its own, apart "
                    f"from {self.variable(field)} ({getattr(self, field)}): the insurance trips are personal data"
                )
        return self

    @model_validator(mode="after")
    def _zone_api_defaults_to_the_light_api(self) -> Self:
        if not self.maas_base_url:
            object.__setattr__(self, "maas_base_url", self.api_base_url)  # frozen: set once, while validating
        return self

    @classmethod
    def from_env(cls, env_file: Path | str | None = ".env") -> "Settings":
        """The settings the environment and the `.env` file in the working directory give, every one checked;
        SettingsError names each bad variable, what it takes and what it got."""
        return _FromEnvironment(_env_file=env_file)  # type: ignore[call-arg]  # BaseSettings' own argument

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of a field."""
        alias = cls.model_fields[field].validation_alias
        assert isinstance(alias, str)
        return alias

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Every setting's environment variable, by field."""
        return {name: cls.variable(name) for name in cls.model_fields}

    def set_from_environment(self, field: str) -> bool:
        """Whether the environment (or .env) gave this field, rather than its default."""
        return field in self.model_fields_set


class _FromEnvironment(Settings):
    """Settings read from the environment, refusing what can only be a mistake in it."""

    ENVIRONMENT: ClassVar[bool] = True

    @model_validator(mode="after")
    def _no_simulator_credentials_off_this_machine(self) -> Self:
        """The embedded provider's credentials are published in this repository: sent to a provider elsewhere
        they can only be a forgotten setting (and would hand that provider a known secret)."""
        pairs = (
            ("api_base_url", self.api_base_url, "client_secret", self.client_secret, SIMULATOR_CLIENT_SECRET),
            ("maas_base_url", self.maas_base_url, "auth_token", self.auth_token, SIMULATOR_AUTH_TOKEN),
            ("legacy_mds_base_url", self.legacy_mds_url, "client_secret", self.client_secret, SIMULATOR_CLIENT_SECRET),
        )
        for url_field, url, secret_field, secret, default in pairs:
            if not _is_loopback(url) and secret.reveal() == default:
                url_var, secret_var = self.variable(url_field), self.variable(secret_field)
                raise ValueError(
                    f"{url_var} is {url}, not this machine, but {secret_var} is the embedded provider's default: "
                    f"set {secret_var} to the credential the provider issued you, or point {url_var} at the "
                    "embedded provider on 127.0.0.1"
                )
        return self


def _expects(info: FieldInfo) -> str:
    """What a setting takes, in words: declared, or from its type and lower bound."""
    extra = info.json_schema_extra
    if isinstance(extra, dict) and extra.get("expects"):
        return str(extra["expects"])
    minimum = next((m.ge for m in info.metadata if isinstance(m, annotated_types.Ge)), None)
    annotation = info.annotation
    whole = annotation is int or (getattr(annotation, "__args__", None) or (None,))[0] is int
    kind = "whole number" if whole else "number"
    if minimum is None:
        return f"a {kind}"
    if minimum == 0:
        return f"a {kind}, 0 or more"
    if minimum == 1 and whole:
        return "a positive whole number"
    return f"a {kind} of at least {minimum:g}" if isinstance(minimum, int | float) else f"a {kind}"


def describe(error: ValidationError) -> str:
    """One line for every bad variable: `FLEETLAKE_MAX_PAGES must be a positive whole number, got 'abc'`."""
    by_name = {name: name for name in Settings.model_fields} | {v: k for k, v in Settings.variables().items()}
    lines: dict[str, str] = {}
    for item in error.errors():
        where = item["loc"][0] if item["loc"] else None
        field = by_name.get(str(where)) if where is not None else None
        if field is None:  # a rule across settings: its message says everything
            message = str(item.get("ctx", {}).get("error", item["msg"]))
            lines.setdefault(message, message)
            continue
        variable = Settings.variable(field)
        if variable in lines:
            continue  # one line per variable (a union type reports each of its branches)
        reason = item.get("ctx", {}).get("error")
        why = str(reason) if isinstance(reason, ValueError) else ""
        own = _expects(Settings.model_fields[field])
        line = f"{variable} must be {own}, got {item['input']!r}"
        lines[variable] = f"{line} ({why})" if why and why not in own else line
    return "; ".join(lines.values())


def parse_mds_versions(text: str) -> tuple[tuple[str, MdsVersion], ...]:
    """`zone:version` pairs, comma-separated (`9:1.2,31:0.4`); a version other than 2.0, 1.2 or 0.4 is refused."""
    pairs: list[tuple[str, MdsVersion]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        zone, _, version = (x.strip() for x in item.partition(":"))
        if not zone or version not in MDS_VERSIONS:
            raise ValueError(f"{item!r} is not zone:version with a version of {', '.join(MDS_VERSIONS)}")
        pairs.append((zone, version))
    return tuple(pairs)
