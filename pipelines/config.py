"""Settings from the environment (documented in README.md and .env.example)."""

import os
from dataclasses import dataclass, field
from pathlib import Path


class Secret:
    """A credential that never shows itself in logs, reprs, metadata or exceptions."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

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
        )
