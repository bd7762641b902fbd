"""What a command checks before it starts a run, so a mistake costs a second and one line instead of minutes of
retries and a traceback: the settings, the credentials (one token), the zone API and the zones asked for.
"""

import asyncio
from dataclasses import dataclass

import httpx

from pipelines.config import Settings, SettingsError
from pipelines.voi.client import VoiClient, VoiError

PREFLIGHT_ATTEMPTS = 3
"""Few retries: a check that waits out a provider's whole retry budget is no quicker than the run it guards."""


class PreflightError(Exception):
    """A reason not to start: its message is the one line the operator reads."""


@dataclass(frozen=True)
class Ready:
    zones: tuple[str, ...]
    """The zones to ingest: those asked for, or every zone the zone API lists."""
    listed: tuple[str, ...]
    """Every zone the zone API lists for these credentials."""


def read_settings() -> Settings:
    """The settings from the environment, every one checked before anything starts; PreflightError names each bad
    variable."""
    try:
        return Settings.from_env()
    except SettingsError as e:
        raise PreflightError(str(e)) from e


async def check_provider(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> Ready:
    """One token from the light-integration API, the zone list from the zone API, the zones asked for among it.

    A refused credential or connection raises at once (no long retries), naming the variable to fix."""
    async with VoiClient(settings, transport=transport, max_attempts=PREFLIGHT_ATTEMPTS) as client:
        try:
            await client.authenticate()
            listed = tuple(await client.listed_zones())
        except VoiError as e:
            raise PreflightError(str(e)) from e
    unknown = [zone for zone in settings.zones if zone not in listed]
    if unknown:
        raise PreflightError(
            f"zone(s) {', '.join(unknown)} not among the zones the provider lists for these credentials: "
            f"{', '.join(listed) or 'none'} (--zones or FLEETLAKE_ZONES)"
        )
    zones = settings.zones or listed
    # The lake's module (Polars, Arrow) is imported after the requests: a command's first request waits for no
    # import it does not need.
    from pipelines.lake.store import check_zone_id

    for zone in settings.zones:
        try:
            check_zone_id(zone)
        except ValueError as e:
            raise PreflightError(str(e)) from e
    return Ready(zones=tuple(zones), listed=listed)


def check_before_run() -> tuple[Settings, Ready]:
    """Settings, then the provider; raises PreflightError with the one line to print."""
    settings = read_settings()
    return settings, asyncio.run(check_provider(settings))
