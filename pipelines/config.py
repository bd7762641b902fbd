"""Settings from the environment (documented in README.md and .env.example)."""

import math
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipelines.scrub import remember_secret

HISTORY_START_ENV = "FLEETLAKE_HISTORY_START"
LEAD_IN_HOURS_ENV = "FLEETLAKE_LEAD_IN_HOURS"


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


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable, the value and what it takes."""


def env_number(name: str, default: float, *, integer: bool = False, minimum: float = 0.0) -> float:
    """A numeric setting from the environment, checked: a bad value names its variable instead of a bare
    `ValueError` deep inside a run."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SettingsError(f"{name}={text!r} is not {kind} (default {default:g})") from None
    if not math.isfinite(value) or value < minimum:
        raise SettingsError(f"{name}={text!r} must be at least {minimum:g} (default {default:g})")
    return value


NUMERIC_SETTINGS: dict[str, tuple[float, bool, float]] = {
    # name: (default, whole number, minimum)
    "FLEETLAKE_REQUEST_DEADLINE_SECONDS": (120.0, False, 1.0),
    "FLEETLAKE_MAX_PAGES": (1000, True, 1),
    "FLEETLAKE_MAX_RETRY_AFTER_SECONDS": (300.0, False, 0.0),
    "FLEETLAKE_MAX_RESPONSE_BYTES": (256 * 2**20, True, 1024),
    "FLEETLAKE_IDLE_LIMIT_HOURS": (72.0, False, 0.0),
    "FLEETLAKE_LOOKBACK_HOURS": (6, True, 0),
    "FLEETLAKE_NOT_READY_RETRY_SECONDS": (300.0, False, 0.0),
    "FLEETLAKE_NOT_READY_MAX_RETRIES": (12, True, 0),
    LEAD_IN_HOURS_ENV: (48, True, 0),
    "FLEETLAKE_MAX_RUNTIME_SECONDS": (0, True, 1),  # 0, unset: each job's own (assets/run_limits.py)
}
"""Every numeric setting with its default and bounds, so a command can check them all before it starts."""


def numeric_setting(name: str) -> float:
    default, integer, minimum = NUMERIC_SETTINGS[name]
    return env_number(name, default, integer=integer, minimum=minimum)


def check_numeric_settings() -> None:
    """Raise SettingsError for the first numeric setting that cannot be used."""
    for name in NUMERIC_SETTINGS:
        numeric_setting(name)


def _date_env(name: str, default: date) -> date:
    value = _env(name)
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        raise SettingsError(f"{name} takes a date, YYYY-MM-DD, not {value!r}") from None


@dataclass(frozen=True)
class Settings:
    api_base_url: str = "http://127.0.0.1:8400"
    maas_base_url: str = "http://127.0.0.1:8400"
    client_id: str = "fleetlake"
    client_secret: Secret = field(default_factory=lambda: Secret("fleetlake-secret"))
    auth_token: Secret = field(default_factory=lambda: Secret("fleetlake-maas-token"))
    zones: tuple[str, ...] = ()
    """Empty means: discover them from the zone API."""
    lake_dir: Path = Path("data/lake")
    warehouse: Path = Path("data/warehouse.duckdb")
    reports_dir: Path = Path("data/reports")
    request_deadline_s: float = NUMERIC_SETTINGS["FLEETLAKE_REQUEST_DEADLINE_SECONDS"][0]
    """The longest one request may take, body included (a body trickling a byte at a time never times out)."""
    max_pages: int = int(NUMERIC_SETTINGS["FLEETLAKE_MAX_PAGES"][0])
    """Most `links.next` pages followed for one request window; a chain beyond fails its partition."""
    max_retry_after_s: float = NUMERIC_SETTINGS["FLEETLAKE_MAX_RETRY_AFTER_SECONDS"][0]
    """Longest Retry-After honoured; a longer one fails the request (its partition) instead of pausing all."""
    max_response_bytes: int = int(NUMERIC_SETTINGS["FLEETLAKE_MAX_RESPONSE_BYTES"][0])
    """Largest response body, decompressed, read into memory; a larger one (a gzip bomb) fails its request."""
    history_start: date = date(2024, 1, 1)
    """The first UTC day the hourly (and monthly) partitions hold: the start of the city's history."""
    lead_in_hours: int = 48
    """Hours a backfill reads before its window, and the first hours of a zone's history (or of a resumption after
    a gap) flagged warm-up: vehicles silent longer than this are not known (the MDS methodology's 48 hours)."""

    @classmethod
    def from_env(cls) -> "Settings":
        d = cls()
        return cls(
            api_base_url=_env("VOI_API_BASE_URL", d.api_base_url).rstrip("/"),
            maas_base_url=_env("VOI_MAAS_BASE_URL", _env("VOI_API_BASE_URL", d.maas_base_url)).rstrip("/"),
            client_id=_env("VOI_CLIENT_ID", d.client_id),
            client_secret=Secret(_env("VOI_CLIENT_SECRET", d.client_secret.reveal())),
            auth_token=Secret(_env("VOI_AUTH_TOKEN", d.auth_token.reveal())),
            zones=tuple(z.strip() for z in _env("FLEETLAKE_ZONES").split(",") if z.strip()),
            lake_dir=Path(_env("FLEETLAKE_LAKE_DIR", str(d.lake_dir))),
            warehouse=Path(_env("FLEETLAKE_WAREHOUSE", str(d.warehouse))),
            reports_dir=Path(_env("FLEETLAKE_REPORTS_DIR", str(d.reports_dir))),
            request_deadline_s=numeric_setting("FLEETLAKE_REQUEST_DEADLINE_SECONDS"),
            max_pages=int(numeric_setting("FLEETLAKE_MAX_PAGES")),
            max_retry_after_s=numeric_setting("FLEETLAKE_MAX_RETRY_AFTER_SECONDS"),
            max_response_bytes=int(numeric_setting("FLEETLAKE_MAX_RESPONSE_BYTES")),
            history_start=_date_env(HISTORY_START_ENV, d.history_start),
            lead_in_hours=int(numeric_setting(LEAD_IN_HOURS_ENV)),
        )
