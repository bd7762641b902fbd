"""A Metrics API query: read from the request body, checked field by field, answered from the warehouse.

Nothing the caller sends reaches SQL as text: measures, dimensions and filter names are looked up in fixed tables,
and every value (dates, ids, types) is bound as a parameter or sent as a registered relation.
"""

import math
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pyarrow as pa

from pipelines.metrics.geographies import ZONE_TYPE, Geography
from pipelines.metrics.intervals import INTERVALS, DateError, Interval, formatted, intervals, parse_moment, quarters
from pipelines.metrics.measures import DEPLOYED_STATES, MEASURES, Measure

DIMENSIONS = ("provider_id", "geography_id", "vehicle_type")
FILTERS = ("provider_id", "geography_id", "geography_type", "vehicle_type")
MAX_INTERVALS = 3000
EVERY_TYPE = "*"
NOT_KNOWN = ""  # what a row holds where a value is not known (an average of no trips): MDS rows take no null


class QueryError(ValueError):
    """A query the API refuses: `field` is the request field at fault (the 400 body names it)."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


@dataclass(frozen=True)
class MetricsQuery:
    measures: tuple[Measure, ...]
    interval: str
    spans: list[Interval]
    zone: ZoneInfo
    numeric: bool
    dimensions: tuple[str, ...]
    filters: dict[str, tuple[str, ...]]
    echo: dict[str, Any] = field(default_factory=dict)


def _strings(body: Mapping[str, Any], name: str, allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise QueryError(name, f"{name} is a list of strings")
    if len(set(value)) != len(value):
        raise QueryError(name, f"{name} lists a value twice")
    if allowed is not None and (unknown := [item for item in value if item not in allowed]):
        raise QueryError(name, f"{name}: not supported: {', '.join(unknown)} (GET /metrics lists what is)")
    return tuple(value)


def parse_query(body: object, max_intervals: int = MAX_INTERVALS) -> MetricsQuery:
    """The query in a POST /metrics body, or a QueryError naming the field at fault."""
    if not isinstance(body, dict):
        raise QueryError("body", "the body is a JSON object")
    if unknown_fields := sorted(
        set(body) - {"measures", "interval", "start_date", "end_date", "timezone", "dimensions", "filters"}
    ):
        raise QueryError(unknown_fields[0], f"unknown field {unknown_fields[0]}")
    for required in ("measures", "interval", "start_date"):
        if required not in body:
            raise QueryError(required, f"{required} is required")
    names = _strings(body, "measures", tuple(MEASURES))
    if not names:
        raise QueryError("measures", "measures lists at least one measure")
    interval = body["interval"]
    if interval not in INTERVALS:
        raise QueryError("interval", f"interval is one of {', '.join(INTERVALS)}")
    timezone = body.get("timezone")
    if timezone is not None and not isinstance(timezone, str):
        raise QueryError("timezone", "timezone is a TZ database name")
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise QueryError("timezone", f"unknown time zone {timezone!r}") from None
    try:
        start, numeric = parse_moment(body["start_date"], zone)
    except DateError as error:
        raise QueryError("start_date", str(error)) from None
    end = None
    if body.get("end_date") is not None:
        try:
            end, end_numeric = parse_moment(body["end_date"], zone)
        except DateError as error:
            raise QueryError("end_date", str(error)) from None
        if end_numeric != numeric:
            raise QueryError("end_date", "end_date is a timestamp exactly when start_date is")
        if end < start:
            raise QueryError("end_date", "end_date is before start_date")
    if numeric and timezone is not None:
        raise QueryError("timezone", "timezone is not allowed with numeric timestamps")
    try:
        spans = intervals(start, end, interval, zone, max_intervals)
    except DateError as error:
        raise QueryError("end_date" if "max_intervals" in str(error) else "start_date", str(error)) from None
    dimensions = _strings(body, "dimensions", DIMENSIONS)
    filters: dict[str, tuple[str, ...]] = {}
    raw_filters = body.get("filters", [])
    if not isinstance(raw_filters, list):
        raise QueryError("filters", "filters is a list of {name, values}")
    for item in raw_filters:
        if not isinstance(item, dict) or set(item) != {"name", "values"}:
            raise QueryError("filters", "a filter is {name, values}")
        name, values = item["name"], item["values"]
        if name not in FILTERS:
            raise QueryError("filters", f"unknown filter {name!r}: one of {', '.join(FILTERS)}")
        if name in filters:
            raise QueryError("filters", f"filter {name} given twice")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise QueryError("filters", f"filter {name}: values is a non-empty list of strings")
        filters[name] = tuple(values)
    measures = tuple(MEASURES[name] for name in names)
    echo = {
        "measures": list(names),
        "interval": interval,
        "start_date": body["start_date"],
        "end_date": body.get("end_date") or body["start_date"],
        "timezone": timezone or "UTC",
    }
    # Given only when asked for: the OpenAPI wants at least one dimension where the field is present.
    if dimensions:
        echo["dimensions"] = list(dimensions)
    if filters:
        echo["filters"] = [{"name": name, "values": list(values)} for name, values in filters.items()]
    return MetricsQuery(measures, interval, spans, zone, numeric, dimensions, filters, echo)


def selected_geographies(query: MetricsQuery, every: Sequence[Geography]) -> list[Geography]:
    """The geographies the query reads: those filtered by id or type; without a filter, with the geography_id
    dimension every zone and area, else the zones (the whole of each, its areas summed would count it again)."""
    chosen = list(every)
    if ids := query.filters.get("geography_id"):
        known = {geography.geography_id for geography in every}
        if unknown := [value for value in ids if value not in known]:
            raise QueryError("filters", f"unknown geography_id {unknown[0]} (GET /geographies lists them)")
        chosen = [geography for geography in chosen if geography.geography_id in ids]
    if types := query.filters.get("geography_type"):
        chosen = [geography for geography in chosen if geography.geography_type in types]
    unfiltered = "geography_id" not in query.filters and "geography_type" not in query.filters
    if unfiltered and "geography_id" not in query.dimensions:
        chosen = [geography for geography in chosen if geography.geography_type == ZONE_TYPE]
    return chosen


@dataclass(slots=True)
class _Cell:
    """What the pieces say of one row: sums by subject, and the minima/maxima inputs."""

    seconds: dict[str, float] = field(default_factory=dict)
    minimum: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # subject: (min, quarters, series)
    maximum: dict[str, tuple[int, int]] = field(default_factory=dict)  # subject: (max, series)
    # subject: least and greatest average over the shorter intervals with a row, and how many had one
    sub_averages: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    # Deployed seconds of the vehicles on a trip at some time of the interval (dockless.active.*).
    active_seconds: float = 0.0
    events: dict[str, int] = field(default_factory=dict)
    trips: dict[str, tuple[float, ...]] = field(default_factory=dict)  # location: count, n, sum, sq, n, sum, sq
    medians: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


def _dimension_sql(query: MetricsQuery, alias: str) -> tuple[str, str]:
    """The select list and group-by columns of the query's dimensions (fixed names, never the caller's text)."""
    columns = {
        "provider_id": f"cast({alias}.provider_id as varchar)",
        "geography_id": "geos.geography_id",
        "vehicle_type": f"{alias}.vehicle_type",
    }
    chosen = [f"{columns[name]} as {name}" for name in DIMENSIONS if name in query.dimensions]
    return "".join(f"{column}, " for column in chosen), "".join(
        f", {name}" for name in DIMENSIONS if name in query.dimensions
    )


def _types_condition(query: MetricsQuery, alias: str) -> str:
    if "vehicle_type" in query.dimensions or "vehicle_type" in query.filters:
        condition = f"{alias}.vehicle_type <> '{EVERY_TYPE}'"
        if "vehicle_type" in query.filters:
            condition += f" and list_contains($vehicle_types, {alias}.vehicle_type)"
        return condition
    return f"{alias}.vehicle_type = '{EVERY_TYPE}'"


def _provider_condition(query: MetricsQuery, alias: str) -> str:
    if "provider_id" in query.filters:
        return f"list_contains($providers, cast({alias}.provider_id as varchar))"
    return "true"


def _parameters(query: MetricsQuery, names: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "vehicle_types" in names and "vehicle_type" in query.filters:
        values["vehicle_types"] = list(query.filters["vehicle_type"])
    if "providers" in names and "provider_id" in query.filters:
        values["providers"] = list(query.filters["provider_id"])
    return values


def _bound(sql: str, query: MetricsQuery, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    values = _parameters(query, [name for name in ("vehicle_types", "providers") if f"${name}" in sql])
    values.update({name: value for name, value in (extra or {}).items() if f"${name}" in sql})
    return values


# One read of the vehicle pieces a query needs: summed by the shorter interval first (what `.avg.min`/`.avg.max`
# range over), then by the interval. Whether several stored series (zones, areas, providers or vehicle types) feed
# one row (minima and maxima of a sum are not the sum of theirs) is told by the least and greatest 64-bit hash of
# their keys: they roll up where a count of distinct keys would not, at a third of its cost, and two series alike
# in all 64 bits would take some 10^19 tries. Seconds are summed in the whole milliseconds the pieces hold: exact, in
# any order, and so the same to the last bit as occupancy_hourly's.
VEHICLES = """
with subs as (
    select metric_quarters.span, metric_quarters.sub, {dimensions}pieces.vehicle_state,
        any_value(metric_quarters.sub_quarters) as sub_quarters,
        sum(cast(round(pieces.state_seconds * 1000) as bigint)) as milliseconds,
        min(pieces.min_vehicles) as fewest,
        max(pieces.max_vehicles) as most,
        count(*) as rows,
        min(hash(pieces.zone_id, pieces.scope, pieces.area_id, pieces.provider_id, pieces.vehicle_type))
            as first_series,
        max(hash(pieces.zone_id, pieces.scope, pieces.area_id, pieces.provider_id, pieces.vehicle_type))
            as last_series,
    from core.int_metrics_vehicles as pieces
    inner join metric_quarters on pieces.interval_start = metric_quarters.interval_start
    inner join metric_geographies as geos
        on pieces.zone_id = geos.zone_id
        and pieces.scope = geos.scope
        and pieces.area_id is not distinct from geos.area_id
    where list_contains($states, pieces.vehicle_state) and {types} and {providers}
    group by metric_quarters.span, metric_quarters.sub{group}, pieces.vehicle_state
)
select span{group}, vehicle_state,
    sum(milliseconds) / 1000.0 as seconds,
    min(fewest) as fewest,
    max(most) as most,
    cast(sum(rows) as bigint) as rows,
    min(first_series) is distinct from max(last_series) as several,
    min(milliseconds / (900000.0 * sub_quarters)) as least_average,
    max(milliseconds / (900000.0 * sub_quarters)) as most_average,
    count(*) as subs,
from subs
group by span{group}, vehicle_state
"""
EVENTS = """
select metric_quarters.span, {dimensions}pieces.event_type, sum(pieces.event_count) as events,
from core.int_metrics_events as pieces
inner join metric_quarters on pieces.interval_start = metric_quarters.interval_start
inner join metric_geographies as geos
    on pieces.zone_id = geos.zone_id and pieces.scope = geos.scope and pieces.area_id is not distinct from geos.area_id
where list_contains($event_types, pieces.event_type) and {types} and {providers}
group by metric_quarters.span{group}, pieces.event_type
"""
TRIPS = """
select metric_quarters.span, {dimensions}pieces.location,
    -- As doubles, the type the response's arithmetic takes them in (no conversion of each value in Python).
    cast(sum(pieces.trip_count) as double),
    cast(sum(pieces.duration_count) as double),
    sum(pieces.duration_sum_s),
    sum(pieces.duration_sum_sq),
    cast(sum(pieces.distance_count) as double),
    sum(pieces.distance_sum_m),
    sum(pieces.distance_sum_sq),
from core.int_metrics_trips as pieces
inner join metric_quarters on pieces.interval_start = metric_quarters.interval_start
inner join metric_geographies as geos
    on pieces.zone_id = geos.zone_id and pieces.scope = geos.scope and pieces.area_id is not distinct from geos.area_id
where list_contains($locations, pieces.location) and {types} and {providers}
group by metric_quarters.span{group}, pieces.location
"""
# Medians are not additive: the pieces keep the reported values, and a roll-up takes the median of their union.
MEDIANS = """
select metric_quarters.span, {dimensions}
    list_median(flatten(list(pieces.durations_s))) as duration_median,
    list_median(flatten(list(pieces.distances_m))) as distance_median,
from core.int_metrics_trips as pieces
inner join metric_quarters on pieces.interval_start = metric_quarters.interval_start
inner join metric_geographies as geos
    on pieces.zone_id = geos.zone_id and pieces.scope = geos.scope and pieces.area_id is not distinct from geos.area_id
where pieces.location = $location and {types} and {providers}
group by metric_quarters.span{group}
"""

# Whether a vehicle was active depends on the whole interval, so the intervals up to an hour long (PT15M, PT1H: in any
# time zone an hour starts on a UTC quarter) each have their own stored piece (core.int_metrics_activity): an interval
# sums its own pieces, as VEHICLES sums deployed seconds, in the whole milliseconds the pieces hold.
ACTIVE_PIECES = """
select metric_spans.span, {dimensions}sum(cast(round(pieces.active_seconds * 1000) as bigint)) / 1000.0,
from core.int_metrics_activity as pieces
inner join metric_spans on pieces.interval_start = metric_spans.span_start
inner join metric_geographies as geos
    on pieces.zone_id = geos.zone_id and pieces.scope = geos.scope and pieces.area_id is not distinct from geos.area_id
where pieces.interval_duration = $interval_duration and {types} and {providers}
group by metric_spans.span{group}
"""
# The intervals core.int_metrics_activity holds a piece of each of.
ACTIVE_PIECE_INTERVALS = ("PT15M", "PT1H")

# The longer intervals (P1D, P1M: local days and months start on any quarter and last 92 to 3,000 of them, too many
# pieces to store): whether a vehicle was active (on a trip at some time of the interval, anywhere in its zone) is
# taken from each vehicle's state timeline at query time, the seconds in the right of way of the vehicles that rode
# (inactive: the rest of core.int_metrics_vehicles' deployed seconds).
# Every deployed state counts, as in core.int_metrics_vehicles, in the area where it began, cut at the zone's
# delivered hours and the intervals' bounds, with the vehicle's provider and type as that model gives them. The
# intervals are contiguous runs of whole quarters, so a state runs over the spans from the one holding its first
# quarter to the one holding its last: looked up by quarter in $quarter_spans (each quarter's span, from
# $first_quarter on), no range join.
ACTIVITY = """
with devices as (
    select
        devices.zone_id,
        devices.device_id,
        row_number() over () as device_key,
        min(devices.provider_id) as provider_id,
        coalesce(any_value(vehicles.vehicle_type), 'unknown') as vehicle_type,
    from core.int_metrics_devices as devices
    left join staging.stg_mds__vehicles as vehicles
        on devices.zone_id = vehicles.zone_id and devices.device_id = vehicles.device_id
    where list_contains($zones, devices.zone_id)
    group by devices.zone_id, devices.device_id
),

deployed as (
    select
        devices.device_key,
        intervals.zone_id,
        intervals.area_id,
        intervals.area_type,
        devices.provider_id,
        devices.vehicle_type,
        intervals.vehicle_state = 'on_trip' as on_trip,
        greatest(intervals.started_at, horizons.first_hour, $first) as started_at,
        least(coalesce(intervals.ended_at, horizons.horizon), horizons.horizon, $last) as ended_at,
    from main.vehicle_state_intervals as intervals
    inner join core.int_zone_horizons as horizons on intervals.zone_id = horizons.zone_id
    inner join devices on intervals.zone_id = devices.zone_id and intervals.device_id = devices.device_id
    where list_contains($deployed_states, intervals.vehicle_state)
        and list_contains($zones, intervals.zone_id)
        and intervals.started_at < $last
        and (intervals.ended_at is null or intervals.ended_at > $first)
),

-- The first and last interval each state overlaps (every state some seconds long).
spanned as (
    select
        deployed.*,
        $quarter_spans[epoch_ms(deployed.started_at) // 900000 - $first_quarter + 1] as first_span,
        $quarter_spans[(epoch_ms(deployed.ended_at) - 1) // 900000 - $first_quarter + 1] as last_span,
    from deployed
    where deployed.ended_at > deployed.started_at
),

-- Each state once per interval it overlaps; but a state other than on_trip only in its first and last: an interval it
-- fills from end to end holds no trip of the vehicle, and so none of its seconds count.
bounded as (
    select
        * exclude (first_span, last_span),
        unnest(if(on_trip or last_span - first_span < 2, range(first_span, last_span + 1), [first_span, last_span]))
            as span,
    from spanned
),

-- The intervals in which each vehicle rode.
active as (
    select distinct device_key, unnest(range(first_span, last_span + 1)) as span, from spanned where on_trip
),

placed as (
    select
        bounded.span,
        bounded.zone_id,
        bounded.area_id,
        bounded.area_type,
        bounded.provider_id,
        bounded.vehicle_type,
        sum(
            epoch(least(bounded.ended_at, metric_spans.span_end))
            - epoch(greatest(bounded.started_at, metric_spans.span_start))
        ) as active_seconds,
    from bounded
    semi join active on bounded.device_key = active.device_key and bounded.span = active.span
    inner join metric_spans on bounded.span = metric_spans.span
    group by all
)

select pieces.span, {dimensions}sum(pieces.active_seconds) as active_seconds,
from placed as pieces
inner join metric_geographies as geos
    on pieces.zone_id = geos.zone_id
    and (geos.scope = 'zone' or (pieces.area_type <> 'outside' and pieces.area_id = geos.area_id))
where {types_plain} and {providers}
group by pieces.span{group}
"""


class Answer:
    """Reads the pieces for one query and assembles the MDS response."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        query: MetricsQuery,
        geographies: Sequence[Geography],
        k: int,
        horizons: Mapping[str, tuple[datetime, datetime]],
    ) -> None:
        self.con = con
        self.query = query
        self.k = k
        self.geographies = list(geographies)
        zones = {geography.zone_id for geography in self.geographies}
        covered = [horizons[zone] for zone in zones if zone in horizons]
        # Only whole intervals within the data: an interval the data covers in part would understate every average.
        first = min((span[0] for span in covered), default=None)
        last = max((span[1] for span in covered), default=None)
        self.spans = [
            span
            for span in query.spans
            if first is not None and last is not None and span.start >= first and span.end <= last
        ]
        self.cells: dict[tuple[Any, ...], _Cell] = {}

    def _register(self) -> None:
        pieces = quarters(self.spans, self.query.interval, self.query.zone)
        sub_counts = Counter((span, sub) for _, span, sub in pieces)
        self.con.register(
            "metric_quarters",
            pa.table(
                {
                    "interval_start": pa.array([row[0] for row in pieces], pa.timestamp("us", "UTC")),
                    "span": pa.array([row[1] for row in pieces], pa.int32()),
                    "sub": pa.array([row[2] for row in pieces], pa.int32()),
                    "sub_quarters": pa.array([sub_counts[(row[1], row[2])] for row in pieces], pa.int32()),
                }
            ),
        )
        self.con.register(
            "metric_geographies",
            pa.table(
                {
                    "geography_id": pa.array([g.geography_id for g in self.geographies], pa.string()),
                    "zone_id": pa.array([g.zone_id for g in self.geographies], pa.string()),
                    "scope": pa.array([g.scope for g in self.geographies], pa.string()),
                    "area_id": pa.array([g.area_id for g in self.geographies], pa.string()),
                }
            ),
        )
        self.con.register(
            "metric_spans",
            pa.table(
                {
                    "span": pa.array([span.index for span in self.spans], pa.int32()),
                    "span_start": pa.array([span.start for span in self.spans], pa.timestamp("us", "UTC")),
                    "span_end": pa.array([span.end for span in self.spans], pa.timestamp("us", "UTC")),
                }
            ),
        )
        self.quarter_spans = [span for _, span, _ in pieces]  # in time order, from the first span's start
        self.sub_counts: dict[int, dict[int, int]] = {}
        for (span, sub), count in sub_counts.items():
            self.sub_counts.setdefault(span, {})[sub] = count
        # Each interval's quarters and shorter intervals, counted once rather than for every row.
        self.span_quarters = {span: sum(subs.values()) for span, subs in self.sub_counts.items()}
        self.span_subs = {span: len(subs) for span, subs in self.sub_counts.items()}

    def _cell(self, key: tuple[Any, ...]) -> _Cell:
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = _Cell()
        return cell

    def _run(self, template: str, extra: Mapping[str, Any], alias: str = "pieces") -> list[tuple[Any, ...]]:
        dimensions, group = _dimension_sql(self.query, alias)
        sql = template.format(
            dimensions=dimensions,
            group=group,
            types=_types_condition(self.query, alias),
            types_plain=_types_condition(self.query, alias)
            .replace(f"{alias}.vehicle_type <> '{EVERY_TYPE}'", "true")
            .replace(f"{alias}.vehicle_type = '{EVERY_TYPE}'", "true"),
            providers=_provider_condition(self.query, alias),
        )
        return self.con.execute(sql, _bound(sql, self.query, extra)).fetchall()

    def read(self) -> None:
        self._register()
        width = len(self.query.dimensions)
        measures = self.query.measures
        states = {m.subject for m in measures if m.family in ("vehicles", "dockless")}
        if any(m.kind in ("idle.percent",) for m in measures):
            states.add("on_trip")
        if states:
            for row in self._run(VEHICLES, {"states": sorted(states)}):
                cell = self._cell(row[: 1 + width])
                state, seconds, fewest, most, rows, several, least, greatest, subs = row[1 + width :]
                series = 2 if several else 1
                cell.seconds[state] = float(seconds)
                cell.minimum[state] = (int(fewest), int(rows), series)
                cell.maximum[state] = (int(most), series)
                cell.sub_averages[state] = (float(least), float(greatest), int(subs))
        if event_types := sorted({m.subject for m in measures if m.family == "events"}):
            for row in self._run(EVENTS, {"event_types": event_types}):
                self._cell(row[: 1 + width]).events[row[1 + width]] = int(row[2 + width])
        locations = {m.subject for m in measures if m.family == "trips"}
        if any(m.kind == "trips_per_vehicle.avg" for m in measures):
            locations.add("start")
        if locations:
            for row in self._run(TRIPS, {"locations": sorted(locations)}):
                self._cell(row[: 1 + width]).trips[row[1 + width]] = row[2 + width :]
        if any(m.kind in ("active.avg", "inactive.avg", "active.percent") for m in measures) and self.spans:
            self._read_activity()
        median_locations = sorted({m.subject for m in measures if m.family == "trips" and m.kind.endswith(".med")})
        if median_locations:
            for location in median_locations:
                for row in self._run(MEDIANS, {"location": location}):
                    self._cell(row[: 1 + width]).medians[location] = (row[1 + width], row[2 + width])

    def _read_activity(self) -> None:
        """The active seconds of each row: summed from the stored pieces for PT15M and PT1H, read from each vehicle's
        state timeline for the longer intervals."""
        if self.query.interval in ACTIVE_PIECE_INTERVALS:
            rows = self._run(ACTIVE_PIECES, {"interval_duration": self.query.interval})
        else:
            activity = {
                "first": self.spans[0].start,
                "last": self.spans[-1].end,
                "zones": sorted({geography.zone_id for geography in self.geographies}),
                "deployed_states": list(DEPLOYED_STATES),
                "first_quarter": int(self.spans[0].start.timestamp()) // 900,
                "quarter_spans": self.quarter_spans,
            }
            rows = self._run(ACTIVITY, activity)
        width = len(self.query.dimensions)
        for row in rows:
            self._cell(row[: 1 + width]).active_seconds = float(row[1 + width])

    def _keys(self) -> list[tuple[Any, ...]]:
        """Every row: each whole interval with each combination of the dimensions' values (every selected geography,
        the providers and vehicle types found), so a place or hour without trips has its row too."""
        values: list[list[Any]] = []
        for name in DIMENSIONS:
            if name not in self.query.dimensions:
                continue
            index = 1 + len(values)
            if name == "geography_id":
                values.append(sorted(g.geography_id for g in self.geographies))
            else:
                values.append(sorted({key[index] for key in self.cells if key[index] is not None}))
        keys: list[tuple[Any, ...]] = [(span.index,) for span in self.spans]
        for options in values:
            keys = [(*key, option) for key in keys for option in options]
        return keys

    def _reader(self, measure: Measure) -> Callable[[_Cell, Interval], float | int | str]:
        """How a row's value of `measure` is read from its cell: worked out once a measure, not for every row."""
        kind, subject = measure.kind, measure.subject
        if measure.family in ("vehicles", "dockless") and kind == "avg":
            return lambda cell, span: cell.seconds.get(subject, 0.0) / span.seconds
        if measure.family in ("vehicles", "dockless") and kind == "duration.sum":
            return lambda cell, span: cell.seconds.get(subject, 0.0)
        several = QueryError(
            "dimensions",
            f"{measure.name} of several geographies, providers or vehicle types "
            "is not the sum of theirs: add the dimensions (or filter one value)",
        )
        if kind == "min":

            def fewest_of(cell: _Cell, span: Interval) -> int:
                fewest, rows, series = cell.minimum.get(subject, (0, 0, 1))
                if series > 1:
                    raise several
                # A quarter without a row had no vehicle in the state.
                return fewest if rows == self.span_quarters.get(span.index, 0) else 0

            return fewest_of
        if kind == "max":

            def most_of(cell: _Cell, span: Interval) -> int:
                most, series = cell.maximum.get(subject, (0, 1))
                if series > 1:
                    raise several
                return most

            return most_of
        if kind == "avg.max":
            return lambda cell, span: cell.sub_averages.get(subject, (0.0, 0.0, 0))[1]
        if kind == "avg.min":

            def least_average_of(cell: _Cell, span: Interval) -> float:
                least, _, seen = cell.sub_averages.get(subject, (0.0, 0.0, 0))
                # A shorter interval without a row had no vehicle in the state: its average is 0.
                return least if seen == self.span_subs.get(span.index, 0) else 0.0

            return least_average_of
        if kind == "active.percent":

            def active_share_of(cell: _Cell, span: Interval) -> float | str:
                deployed = cell.seconds.get("deployed", 0.0)
                return cell.active_seconds / deployed if deployed > 0 else NOT_KNOWN

            return active_share_of
        if kind == "active.avg":
            return lambda cell, span: cell.active_seconds / span.seconds
        if kind == "inactive.avg":
            return lambda cell, span: max(cell.seconds.get("deployed", 0.0) - cell.active_seconds, 0.0) / span.seconds
        if kind == "idle.percent":

            def idle_share_of(cell: _Cell, span: Interval) -> float | str:
                deployed = cell.seconds.get("deployed", 0.0)
                return (deployed - cell.seconds.get("on_trip", 0.0)) / deployed if deployed > 0 else NOT_KNOWN

            return idle_share_of
        if measure.family == "events":

            def events_of(cell: _Cell, span: Interval) -> int:
                events = cell.events.get(subject, 0)
                # A count of trip events is a count of trips (one event each): redacted below k as they are.
                return -1 if measure.trip_based and events < self.k else events

            return events_of
        return lambda cell, span: self._trip_value(measure, cell, span)

    def _trip_value(self, measure: Measure, cell: _Cell, span: Interval) -> float | int | str:
        kind, subject = measure.kind, measure.subject
        trips = cell.trips.get("start" if kind == "trips_per_vehicle.avg" else subject, (0.0,) * 7)
        count = int(trips[0])
        if measure.trip_based and count < self.k:
            return -1
        if kind == "trips_per_vehicle.avg":
            deployed = cell.seconds.get("deployed", 0.0) / span.seconds
            return count / deployed if deployed > 0 else NOT_KNOWN
        if kind == "count":
            return count
        quantity, stat = kind.split(".")
        n, total, squares = trips[1:4] if quantity == "duration" else trips[4:7]
        if stat == "sum":
            return total
        if n == 0:
            return NOT_KNOWN
        if stat == "avg":
            return total / n
        if stat == "std":
            return math.sqrt(max(squares / n - (total / n) ** 2, 0.0))
        median = cell.medians.get(subject, (None, None))[0 if quantity == "duration" else 1]
        return NOT_KNOWN if median is None else float(median)

    def response(self) -> dict[str, Any]:
        self.read()
        names = ["interval_start", *[name for name in DIMENSIONS if name in self.query.dimensions]]
        columns = [{"name": "interval_start", "column_type": "dimension", "data_type": "datetime"}]
        columns += [{"name": name, "column_type": "dimension", "data_type": "string"} for name in names[1:]]
        columns += [{"name": m.name, "column_type": "metric", "data_type": m.data_type} for m in self.query.measures]
        rows = []
        starts = {span.index: formatted(span.start, self.query.zone, self.query.numeric) for span in self.spans}
        nothing = _Cell()  # a row the pieces say nothing of (read, never written)
        readers = [self._reader(measure) for measure in self.query.measures]
        for key in self._keys():
            span = self.query.spans[key[0]]
            cell = self.cells.get(key, nothing)
            row: list[Any] = [starts[key[0]]]
            row += [NOT_KNOWN if value is None else str(value) for value in key[1:]]
            row += [read(cell, span) for read in readers]
            rows.append(row)
        return {
            "id": str(uuid.uuid4()),
            "query": {**self.query.echo, "k_value": self.k},
            "columns": columns,
            "rows": rows,
        }
