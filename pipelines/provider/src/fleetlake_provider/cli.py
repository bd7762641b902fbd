"""The provider's command line: serve the simulated city, or write its ground truth.

It belongs to the provider, which reads its own settings: the faults to inject (`FLEETLAKE_PROVIDER_FAULTS`) here,
the credentials it accepts (`VOI_CLIENT_ID`, `VOI_CLIENT_SECRET`, `VOI_AUTH_TOKEN`) in `Credentials.from_env`.
`fleetlake provider ...` hands its arguments to this app; `fleetlake-provider ...` runs it alone.
"""

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from fleetlake_provider.app import RATE_LIMIT_PER_MINUTE, ProviderApp
from fleetlake_provider.city import CATALOG, DEFAULT_ZONES, spec_of, zone_ids
from fleetlake_provider.clock import AnchoredClock, Clock, WallClock
from fleetlake_provider.faults import Faults
from fleetlake_provider.server import bind, serve_forever, url_of
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from fleetlake_provider.truth import write_truth

FAULTS_ENV = "FLEETLAKE_PROVIDER_FAULTS"
DEFAULT_ZONES_TEXT = ",".join(DEFAULT_ZONES)
app = typer.Typer(
    help="The embedded Voi provider: a simulated city served over HTTP.", no_args_is_help=True, add_completion=False
)


def _utc(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{option} takes a UTC time in ISO 8601, e.g. 2026-03-28 or 2026-03-28T06:00, not {value!r}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _zones(value: str) -> tuple[str, ...]:
    """Zone ids, comma-separated; or one number without a comma: that many zones (see `city.zone_ids`)."""
    text = value.strip()
    if text.isdigit() and "," not in text:
        if int(text) < 1:
            raise typer.BadParameter(f"--zones takes a count of at least 1 or zone ids, not {value!r}")
        return zone_ids(int(text))
    zones = tuple(dict.fromkeys(z.strip() for z in text.split(",") if z.strip()))
    unknown = []
    for zone in zones:
        try:
            spec_of(zone)
        except ValueError:
            unknown.append(zone)
    if unknown or not zones:
        raise typer.BadParameter(
            f"unknown zone(s) {unknown}; the simulated cities are {sorted(CATALOG)} and generated ones from 1001"
        )
    return zones


def _fleet(value: str, zones: tuple[str, ...]) -> dict[str, int]:
    """`id:size,...`: vehicles per zone; each zone must be served."""
    fleet: dict[str, int] = {}
    for item in (part.strip() for part in value.split(",") if part.strip()):
        zone, _, size = item.partition(":")
        if not size.strip().isdigit() or int(size) < 1:
            raise typer.BadParameter(f"--fleet takes zone:vehicles pairs, e.g. 1:20000,145:3000, not {item!r}")
        fleet[zone.strip()] = int(size)
    unserved = sorted(set(fleet) - set(zones))
    if unserved:
        raise typer.BadParameter(f"--fleet sizes zone(s) {unserved}, which --zones does not serve ({list(zones)})")
    return fleet


Seed = Annotated[int, typer.Option(help="Seed of the simulation: the same seed gives the same city.")]
Vehicles = Annotated[int, typer.Option(help="Vehicles per zone.", min=1)]
Start = Annotated[
    str | None,
    typer.Option(help="First simulated UTC instant (ISO 8601); default: midnight UTC (days - 1) ago."),
]
Days = Annotated[int, typer.Option(help="Simulated days.", min=1)]
Zones = Annotated[
    str,
    typer.Option(
        help=f"Comma-separated zone ids (built-in {sorted(CATALOG)}, generated from 1001 on), or one number: that "
        "many zones, the built-in cities first (to name one zone alone, end it with a comma: 9,)."
    ),
]
Fleet = Annotated[
    str,
    typer.Option(help="Vehicles per zone where it differs from --vehicles: zone:vehicles pairs, e.g. 1:20000,145:300."),
]
FaultsOpt = Annotated[
    str,
    typer.Option(
        envvar=FAULTS_ENV,
        help="Faults to inject: 'all', or name=value pairs, e.g. server_error_rate=0.05,late_rate=0.02.",
    ),
]
ReadyDelay = Annotated[float, typer.Option(help="Seconds after an hour ends before it is served (202 until then).")]
ParkedDays = Annotated[
    float,
    typer.Option(
        help="Vehicles parked long before the first hour: each is dropped off up to this many days before --start "
        "(0: the fleet is deployed at --start).",
        min=0,
    ),
]
TimestampRounding = Annotated[
    int,
    typer.Option(
        help="Round every served time down to this many seconds, as real feeds do (1: whole seconds; 900: the "
        "15 minutes of published open data; it must divide an hour). 0 keeps milliseconds.",
        min=0,
        max=3600,
    ),
]


def _options(
    seed: int,
    vehicles: int,
    start: str | None,
    days: int,
    zones: str,
    fleet: str = "",
    faults: str = "",
    ready_delay: float = 600,
    parked_days: float = 0.0,
    timestamp_rounding: int = 0,
) -> ProviderOptions:
    try:
        parsed_faults = Faults.parse(faults)
    except ValueError as e:  # the value may come from the environment: name both places it is set
        raise typer.BadParameter(f"--faults or {FAULTS_ENV}: {e}") from e
    if timestamp_rounding and 3600 % timestamp_rounding:
        raise typer.BadParameter(f"--timestamp-rounding must divide an hour (3600 s), not {timestamp_rounding}")
    served = _zones(zones)
    return ProviderOptions(
        zones=served,
        vehicles=vehicles,
        fleet=_fleet(fleet, served),
        start=_utc(start, "--start") if start else None,
        days=days,
        seed=seed,
        ready_delay_s=ready_delay,
        faults=parsed_faults,
        parked_days=parked_days,
        timestamp_rounding_s=timestamp_rounding,
    )


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8400,
    seed: Seed = 7,
    vehicles: Vehicles = 300,
    start: Start = None,
    days: Days = 2,
    zones: Zones = DEFAULT_ZONES_TEXT,
    fleet: Fleet = "",
    faults: FaultsOpt = "",
    ready_delay: ReadyDelay = 600.0,
    rate_limit: Annotated[int, typer.Option(help="Requests per minute before HTTP 429.")] = RATE_LIMIT_PER_MINUTE,
    now: Annotated[str | None, typer.Option(help="Pretend the current time is this instant (then it runs on).")] = None,
    parked_days: ParkedDays = 0.0,
    timestamp_rounding: TimestampRounding = 0,
) -> None:
    """Serve the simulated Voi API until interrupted; the first line printed is its base URL."""
    options = _options(seed, vehicles, start, days, zones, fleet, faults, ready_delay, parked_days, timestamp_rounding)
    clock: Clock = AnchoredClock(_utc(now, "--now")) if now else WallClock()
    sock = bind(host, port)
    provider = SimulatedProvider(options, clock)
    print(url_of(sock), flush=True)
    typer.echo(
        f"serving zones {', '.join(f'{z} ({provider.vehicles_of(z)})' for z in options.zones)} vehicles, "
        f"{provider.config.start:%Y-%m-%d %H:%M}Z + {options.days} days, seed {options.seed}"
        + (f", faults {faults}" if options.faults.any else "")
        + (f", times rounded to {timestamp_rounding} s" if timestamp_rounding else ""),
        err=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(ProviderApp(provider, rate_limit_per_minute=rate_limit), sock)


@app.command("truth")
def truth(
    out: Annotated[Path, typer.Option(help="Folder to write the Parquet files into.")],
    seed: Seed = 7,
    vehicles: Vehicles = 300,
    start: Start = None,
    days: Days = 2,
    zones: Zones = DEFAULT_ZONES_TEXT,
    fleet: Fleet = "",
    parked_days: ParkedDays = 0.0,
    timestamp_rounding: TimestampRounding = 0,
) -> None:
    """Write the simulated city's ground truth (trips, events, per-vehicle state timeline) as Parquet."""
    options = _options(
        seed, vehicles, start, days, zones, fleet, parked_days=parked_days, timestamp_rounding=timestamp_rounding
    )
    provider = SimulatedProvider(options)
    for name, path in write_truth(provider, out).items():
        typer.echo(f"{name:>15}: {path}", err=True)


def main() -> None:
    app()
