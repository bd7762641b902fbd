"""Dagster resources: the only way assets reach the Voi API, the lake, the warehouse and the reports."""

from pathlib import Path

import dagster as dg

from pipelines.config import Secret, Settings
from pipelines.lake.store import Lake


class VoiApi(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Voi API access. Empty fields fall back to the environment (VOI_*, FLEETLAKE_ZONES) at run time."""

    api_base_url: str = ""
    maas_base_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    auth_token: str = ""
    zones: str = ""

    def settings(self) -> Settings:
        env = Settings.from_env()
        return Settings(
            api_base_url=(self.api_base_url or env.api_base_url).rstrip("/"),
            maas_base_url=(self.maas_base_url or env.maas_base_url).rstrip("/"),
            client_id=self.client_id or env.client_id,
            client_secret=Secret(self.client_secret) if self.client_secret else env.client_secret,
            auth_token=Secret(self.auth_token) if self.auth_token else env.auth_token,
            zones=tuple(z.strip() for z in self.zones.split(",") if z.strip()) or env.zones,
            lake_dir=env.lake_dir,
            warehouse=env.warehouse,
            reports_dir=env.reports_dir,
            request_deadline_s=env.request_deadline_s,
            max_pages=env.max_pages,
            max_retry_after_s=env.max_retry_after_s,
            max_response_bytes=env.max_response_bytes,
        )


class LakeStore(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The Parquet lake; an empty root falls back to FLEETLAKE_LAKE_DIR at run time."""

    root: str = ""

    def lake(self) -> Lake:
        return Lake(Path(self.root) if self.root else Settings.from_env().lake_dir)


class WarehouseStore(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The DuckDB warehouse file; an empty path falls back to FLEETLAKE_WAREHOUSE at run time."""

    file: str = ""

    def path(self) -> Path:
        return Path(self.file) if self.file else Settings.from_env().warehouse


class ReportsFolder(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where city reports are written; an empty root falls back to FLEETLAKE_REPORTS_DIR at run time."""

    root: str = ""

    def path(self) -> Path:
        return Path(self.root) if self.root else Settings.from_env().reports_dir
