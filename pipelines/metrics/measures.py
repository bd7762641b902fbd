"""The measures the Metrics API answers: their MDS names, what each is computed from, and how it rolls up.

One definition for the API and for anyone reading the warehouse: each measure names the additive piece it reads
(core.int_metrics_vehicles, core.int_metrics_events, core.int_metrics_trips), the piece of each interval itself
where pieces do not add up (core.int_metrics_activity: whether a vehicle was on a trip in a PT15M or PT1H interval,
for dockless.active.avg, inactive.avg, utilization.active.percent) or, where no piece can hold the answer, the rows
themselves: the trips for a median, each vehicle's state timeline for the activity of a day or a month.
`docs/metrics.md` lists them with their definitions and the SQL of each.
"""

from dataclasses import dataclass
from typing import Literal

from pipelines.warehouse.state_machine import STATES, TRANSITIONS

# The right of way (MDS dockless "deployed"): available, unavailable (non_operational), reserved or on a trip.
DEPLOYED_STATES = ("available", "non_operational", "on_trip", "reserved")
EVENT_TYPES = tuple(sorted({transition.event_type for transition in TRANSITIONS}))
# Each event of these types is one trip starting, ending, entering or leaving the jurisdiction, or cancelled: their
# counts are counts of trips, which the Metrics API redacts below k (MDS metrics/README.md, Data Redaction).
TRIP_EVENT_TYPES = tuple(event for event in EVENT_TYPES if event.startswith("trip_"))
LOCATIONS = {"start_loc": "start", "end_loc": "end"}
TRIP_STATISTICS = ("avg", "med", "std", "sum")

Family = Literal["vehicles", "events", "trips", "dockless"]
DataType = Literal["integer", "float"]


@dataclass(frozen=True)
class Measure:
    """One MDS measure name and what answers it.

    `kind` says how: for vehicles `avg`, `min`, `max`, `duration.sum` of `subject` (a state, or 'deployed'); for
    events `count` of the event type `subject`; for trips `count`, `duration.<stat>`, `distance.<stat>` at `subject`
    ('start' or 'end'); for dockless `avg.min`, `avg.max`, `active.avg`, `inactive.avg`, `idle.percent`,
    `active.percent`, `trips_per_vehicle.avg` of 'deployed'.
    """

    name: str
    family: Family
    subject: str
    kind: str
    data_type: DataType
    # Whether the measure is a count of trips (or derives from one: a trip figure of fewer than k trips is theirs) and
    # so falls under redaction below k.
    trip_based: bool = False

    @property
    def needs_single_series(self) -> bool:
        """Minima and maxima of a sum are not the sum of minima: such a measure needs one stored series a row."""
        return self.kind in ("min", "max")


def _catalogue() -> dict[str, Measure]:
    measures: list[Measure] = []
    for state in STATES:
        measures += [
            Measure(f"vehicles.{state}.avg", "vehicles", state, "avg", "float"),
            Measure(f"vehicles.{state}.min", "vehicles", state, "min", "integer"),
            Measure(f"vehicles.{state}.max", "vehicles", state, "max", "integer"),
            Measure(f"vehicles.{state}.duration.sum", "vehicles", state, "duration.sum", "float"),
        ]
    measures += [
        Measure(f"events.{event}.count", "events", event, "count", "integer", trip_based=event in TRIP_EVENT_TYPES)
        for event in EVENT_TYPES
    ]
    for name, location in LOCATIONS.items():
        measures.append(Measure(f"trips.{name}.count", "trips", location, "count", "integer", trip_based=True))
        for quantity in ("duration", "distance"):
            measures += [
                Measure(f"trips.{name}.{quantity}.{stat}", "trips", location, f"{quantity}.{stat}", "float", True)
                for stat in TRIP_STATISTICS
            ]
    measures += [
        Measure("dockless.deployed.avg", "dockless", "deployed", "avg", "float"),
        Measure("dockless.deployed.min", "dockless", "deployed", "min", "integer"),
        Measure("dockless.deployed.max", "dockless", "deployed", "max", "integer"),
        Measure("dockless.deployed.avg.min", "dockless", "deployed", "avg.min", "float"),
        Measure("dockless.deployed.avg.max", "dockless", "deployed", "avg.max", "float"),
        Measure("dockless.active.avg", "dockless", "deployed", "active.avg", "float"),
        Measure("dockless.inactive.avg", "dockless", "deployed", "inactive.avg", "float"),
        Measure("dockless.utilization.idle.percent", "dockless", "deployed", "idle.percent", "float"),
        Measure("dockless.utilization.active.percent", "dockless", "deployed", "active.percent", "float"),
        Measure(
            "dockless.utilization.trips_per_vehicle.avg", "dockless", "deployed", "trips_per_vehicle.avg", "float", True
        ),
    ]
    return {measure.name: measure for measure in measures}


MEASURES = _catalogue()
