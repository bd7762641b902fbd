"""The simulated Voi API as plain Python queries: the simulated zones at the clock's current time, and what every
API answers from them has in common (which hours are served, which instant current state describes, the errors).

The payloads are built per API, each in its module: `mds` (MDS 2.0 trips, events, vehicles), `gbfs` (GBFS 3.0
feeds) and `zone_api` (Voi's zone API). Payload shapes follow the seed documents (`shared/seeds/002_*`, `001_*`);
where those are silent, MDS 2.0 and GBFS 3.0.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from fleetlake_provider.city import DEFAULT_ZONES, build_city, spec_of
from fleetlake_provider.clock import HOUR_MS, Clock, WallClock
from fleetlake_provider.faults import Faults
from fleetlake_provider.index import ZoneIndex
from fleetlake_provider.simulation import SimulationConfig, default_start, round_times, simulate

Json = dict[str, Any]


class ProviderError(Exception):
    """An answer other than 200, with its HTTP status."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ProviderError):
    status = 400


class NotFound(ProviderError):
    status = 404


class NotReady(ProviderError):
    """The hour has ended but the provider has not finished compiling it (HTTP 202)."""

    status = 202


@dataclass(frozen=True)
class ProviderOptions:
    zones: tuple[str, ...] = DEFAULT_ZONES
    """The zones served: built-in cities (1, 145, 9, 31) and generated ones (1001 upwards, see city.zone_ids)."""
    vehicles: int = 300
    """Vehicles of every zone `fleet` does not size."""
    fleet: Mapping[str, int] = field(default_factory=dict, hash=False)
    """Vehicles per zone id, for zones of other sizes than `vehicles` (a big city beside small ones)."""
    start: datetime | None = None
    days: int = 2
    seed: int = 7
    ready_delay_s: float = 600.0
    page_size: int = 2000
    quirks: bool = True
    """Serve the seed's own deviations from the MDS 2.0 schema (nested `last_updated`/`ttl`, `links: {}`), as real
    feeds following the seed do; False serves the schema's shapes instead."""
    faults: Faults = field(default_factory=Faults)
    parked_days: float = 0.0
    """Vehicles parked long before the first hour: each vehicle's drop-off lies up to this many days before
    `start` (its last event then precedes the window); 0 deploys the fleet at `start`."""
    timestamp_rounding_s: int = 0
    """Round every time the city's feeds serve down to this many seconds (0: milliseconds, as simulated; 1: whole
    seconds; 900: the 15 minutes of published open data), the truth included."""
    gbfs_v2_strays: int = 0
    """GBFS 2.3's account-wide free_bike_status also lists this many vehicles far beyond every zone (about 220 km
    north of the first city), as real account-wide feeds do (Voi's Marseille feed lists one in Berlin and one in
    Italy). No zone's feed and no truth has them; 0 lists the zones' vehicles only."""
    insurance_group_share: float = 0.0
    """The share of trips the insurance feed calls group rides (`group-host` or `group-guest`, `is_group_ride`
    true), as real feeds have them; 0: every ride `solo`."""


class SimulatedProvider:
    """The simulated cities at the clock's current time, which every API of the Voi partner API answers from."""

    def __init__(self, options: ProviderOptions | None = None, clock: Clock | None = None) -> None:
        self.options = options or ProviderOptions()
        self.clock: Clock = clock or WallClock()
        opts = self.options
        start = opts.start or default_start(opts.days)
        config = SimulationConfig(
            vehicles=opts.vehicles, start=start, days=opts.days, seed=opts.seed, parked_days=opts.parked_days
        )
        self.config = config
        self.zones: dict[str, ZoneIndex] = {}
        unserved = sorted(set(opts.fleet) - set(opts.zones))
        if unserved:
            raise ValueError(f"fleet sizes given for zone(s) {unserved}, which are not served ({list(opts.zones)})")
        for zone_id in opts.zones:
            vehicles = self.vehicles_of(zone_id)
            if vehicles < 1:
                raise ValueError(f"zone {zone_id} needs at least one vehicle, not {vehicles}")
            city = build_city(spec_of(zone_id), vehicles, opts.seed)
            zone_config = config if vehicles == config.vehicles else replace(config, vehicles=vehicles)
            fleet = round_times(simulate(city, zone_config), opts.timestamp_rounding_s)
            self.zones[zone_id] = ZoneIndex.build(fleet, opts.seed, opts.faults, opts.ready_delay_s)

    def vehicles_of(self, zone_id: str) -> int:
        """The zone's fleet size: its own from `fleet`, else `vehicles`."""
        return self.options.fleet.get(zone_id, self.options.vehicles)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def state_time(self) -> int:
        """The instant current-state endpoints describe: now, held at the end of the simulated window."""
        return min(self.now_ms(), self.config.end_ms - 1)

    def zone(self, zone_id: str) -> ZoneIndex:
        try:
            return self.zones[zone_id]
        except KeyError:
            raise NotFound(f"zone {zone_id} not found") from None

    def check_hour(self, hour_ms: int) -> None:
        """Refuse an hour that has not ended (404) or that the provider has not finished compiling (202)."""
        now = self.now_ms()
        # MDS 2.0: "for hours that are not yet in the past the API shall return a 404", the current one too.
        if hour_ms + HOUR_MS > now or hour_ms >= self.config.end_ms:
            raise NotFound("the requested hour is in the future")
        if now < hour_ms + HOUR_MS + self.options.ready_delay_s * 1000:
            raise NotReady("the requested hour is not ready yet, try again later")

    @staticmethod
    def parse_hour(value: str | None, name: str) -> int:
        if not value:
            raise BadRequest(f"query parameter {name} is required (YYYY-MM-DDTHH)")
        try:
            hour = datetime.strptime(value, "%Y-%m-%dT%H").replace(tzinfo=UTC)
        except ValueError:
            raise BadRequest(f"{name} must be YYYY-MM-DDTHH, a UTC hour between 00 and 23") from None
        return int(hour.timestamp() * 1000)
