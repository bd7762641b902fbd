"""Dagster resources: the only way assets reach the Voi API, the lake, the warehouse and the reports.

Each is configured from the settings (pipelines/config.py) by `resources_for`, never from the environment on its
own: the code location reads the settings once when it loads (assets/settings.py), the command line hands over its
own. A credential set in the environment reaches a resource as a `dg.EnvVar`, resolved when the run starts, so
the UI shows the variable's name, never its value; each resource checks what it is given through the same model.
"""

from pathlib import Path
from typing import Any

import dagster as dg

from assets.executors import StepValues
from pipelines.config import Settings
from pipelines.insurance.area import InsuranceArea, open_area
from pipelines.lake.store import Lake
from pipelines.reports.cells import DEFAULT_RESOLUTION
from pipelines.warehouse.build import Warehouse


class VoiApi(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Voi API access: where, with which credentials, which zones, the limits on every request, and how an hour
    the provider has not compiled yet (HTTP 202) is asked for again."""

    api_base_url: str
    maas_base_url: str
    client_id: str
    client_secret: str
    auth_token: str
    zones: list[str]
    request_deadline_s: float
    max_pages: int
    max_retry_after_s: float
    max_response_bytes: int
    not_ready_retry_s: float
    not_ready_max_retries: int
    gbfs_versions: list[str]

    def settings(self) -> Settings:
        """The API's settings, checked (a bad value from the launchpad names its variable)."""
        return Settings(**self.model_dump(include=set(Settings.model_fields)))


class LakeStore(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The Parquet lake (FLEETLAKE_LAKE_DIR): a folder, or `s3://bucket/prefix` (pipelines/lake/filesystem.py)."""

    root: str

    def lake(self) -> Lake:
        return Lake(self.root)


class WarehouseStore(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The DuckDB warehouse file (FLEETLAKE_WAREHOUSE) and what its build reads: memory, threads, lead-in, the
    city's policy folder, the idle limit and the configured time zones."""

    file: str
    warehouse_memory: str
    duckdb_threads: int | None = None
    """FLEETLAKE_DUCKDB_THREADS; None: one per core."""
    lead_in_hours: int
    policy_dir: str | None
    idle_limit_hours: float
    zone_timezones: dict[str, str]
    warehouse_catalog: str = ""
    """The Postgres URL of a catalog several machines share (FLEETLAKE_WAREHOUSE_CATALOG; it may hold a password,
    so one set in the environment comes as its `dg.EnvVar`); empty: the local file alone."""

    def path(self) -> Path:
        return Path(self.file)

    def settings(self) -> Settings:
        """The build's settings, checked (a bad value from the launchpad names its variable)."""
        fields = self.model_dump(include=set(Settings.model_fields))
        return Settings(**fields, warehouse=self.path())

    def warehouse(self, lake_dir: Path) -> Warehouse:
        return Warehouse(self.path(), lake_dir, settings=self.settings())


class InsuranceStore(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The insurance trips' owner-only folder (FLEETLAKE_INSURANCE_DIR) and how long they are kept
    (FLEETLAKE_INSURANCE_RETENTION_DAYS); only assets/insurance.py reads it."""

    root: str
    retention_days: int

    def area(self) -> InsuranceArea:
        """The area, refused (ExposedInsuranceData) if anything in it is readable by others."""
        return open_area(Path(self.root))


class ReportsFolder(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where city reports are written (FLEETLAKE_REPORTS_DIR), and the H3 resolution of their maps
    (FLEETLAKE_REPORT_H3_RESOLUTION)."""

    root: str
    h3_resolution: int = DEFAULT_RESOLUTION

    def path(self) -> Path:
        return Path(self.root)


SECRETS = ("client_secret", "auth_token")


def resources_for(settings: Settings, *, secrets_as_env_vars: bool = False) -> dict[str, Any]:
    """The code location's resources, configured from `settings`. With `secrets_as_env_vars`, a credential the
    environment set is handed over as its `dg.EnvVar` (resolved when a run starts, never shown in the UI); an unset
    one is the embedded provider's published default."""

    def secret(field: str) -> str:
        if secrets_as_env_vars and settings.set_from_environment(field):
            return dg.EnvVar(Settings.variable(field))
        value: str = getattr(settings, field).reveal()
        return value

    return {
        "voi": VoiApi(
            api_base_url=settings.api_base_url,
            maas_base_url=settings.maas_base_url,
            client_id=settings.client_id,
            client_secret=secret("client_secret"),
            auth_token=secret("auth_token"),
            zones=list(settings.zones),
            request_deadline_s=settings.request_deadline_s,
            max_pages=settings.max_pages,
            max_retry_after_s=settings.max_retry_after_s,
            max_response_bytes=settings.max_response_bytes,
            not_ready_retry_s=settings.not_ready_retry_s,
            not_ready_max_retries=settings.not_ready_max_retries,
            gbfs_versions=list(settings.gbfs_versions),
        ),
        "lake": LakeStore(root=str(settings.lake_dir)),
        "step_values": StepValues(base=settings.step_values_dir, lake=str(settings.lake_dir)),
        "warehouse": WarehouseStore(
            file=str(settings.warehouse),
            warehouse_memory=settings.warehouse_memory,
            duckdb_threads=settings.duckdb_threads,
            lead_in_hours=settings.lead_in_hours,
            policy_dir=None if settings.policy_dir is None else str(settings.policy_dir),
            idle_limit_hours=settings.idle_limit_hours,
            zone_timezones=dict(settings.zone_timezones),
            warehouse_catalog=(
                dg.EnvVar(Settings.variable("warehouse_catalog"))
                if secrets_as_env_vars and settings.set_from_environment("warehouse_catalog")
                else settings.warehouse_catalog
            ),
        ),
        "reports": ReportsFolder(root=str(settings.reports_dir), h3_resolution=settings.report_h3_resolution),
        "insurance": InsuranceStore(root=str(settings.insurance_dir), retention_days=settings.insurance_retention_days),
    }
