"""A Metrics API query: read from the request body, checked field by field, answered from the warehouse.

Nothing the caller sends reaches SQL as text: measures, dimensions and filter names are looked up in fixed tables,
and every value (dates, ids, types) is bound as a parameter or sent as a registered relation.
"""

import json
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import product
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import polars as pl
import pyarrow as pa

from pipelines.metrics.columns import ACTIVE_SECONDS, UNDELIVERED, measure_json, piece
from pipelines.metrics.deliveries import overlaps_missing
from pipelines.metrics.geographies import ZONE_TYPE, Geography
from pipelines.metrics.intervals import INTERVALS, DateError, Interval, formatted, intervals, parse_moment, quarters
from pipelines.metrics.measures import DEPLOYED_STATES, MEASURES, Measure

DIMENSIONS = ("provider_id", "geography_id", "vehicle_type")
FILTERS = ("provider_id", "geography_id", "geography_type", "vehicle_type")
MAX_INTERVALS = 3000
EVERY_TYPE = "*"


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
        providers.zone_id,
        providers.device_id,
        row_number() over () as device_key,
        providers.provider_id,
        coalesce(vehicles.vehicle_type, 'unknown') as vehicle_type,
    from core.int_metrics_vehicle_providers as providers
    left join staging.stg_mds__vehicles as vehicles
        on providers.zone_id = vehicles.zone_id and providers.device_id = vehicles.device_id
    where list_contains($zones, providers.zone_id)
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
        missing: Mapping[str, Sequence[datetime]],
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
        # Within them, the zones whose delivered hours do not hold an interval whole (a zone delivered later than
        # another, an hour of an offset time zone straddling its horizon, an hour it never delivered in between):
        # what they say of it is not known.
        self.undelivered = {
            span.index: {
                zone
                for zone in zones
                if zone not in horizons
                or not horizons[zone][0] <= span.start < span.end <= horizons[zone][1]
                or overlaps_missing(missing.get(zone, ()), span.start, span.end)
            }
            for span in self.spans
        }
        # What each query of the pieces said, keyed by interval and dimension values: joined into the row table.
        self.pieces: list[pl.DataFrame] = []

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

    def _run(self, template: str, extra: Mapping[str, Any], alias: str = "pieces") -> pl.DataFrame:
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
        return self.con.execute(sql, _bound(sql, self.query, extra)).pl()

    def _pieces(self, template: str, extra: Mapping[str, Any], names: Sequence[str]) -> pl.DataFrame:
        """One query of the pieces: its interval and dimension columns, then `names`."""
        found = self._run(template, extra)
        keys = ["span", *self.dimensions]
        found = found.rename(dict(zip(found.columns, [*keys, *names], strict=True)))
        return found.with_columns(pl.col("span").cast(pl.Int32), *(pl.col(name).cast(pl.String) for name in keys[1:]))

    def _spread(self, found: pl.DataFrame, by: str, subjects: Sequence[str], names: Sequence[str]) -> None:
        """Keeps `found`'s columns `names` as one column each per value of `by` asked for (a state, event type or
        location), null in the rows the pieces say nothing of."""
        keys = ["span", *self.dimensions]
        for subject in subjects:
            self.pieces.append(
                found.filter(pl.col(by) == subject).select(
                    *keys, *(pl.col(name).alias(piece(name, subject)) for name in names)
                )
            )

    @property
    def dimensions(self) -> list[str]:
        """The query's dimensions in the order of a row's columns."""
        return [name for name in DIMENSIONS if name in self.query.dimensions]

    def read(self) -> None:
        self._register()
        measures = self.query.measures
        states = sorted(
            {m.subject for m in measures if m.family in ("vehicles", "dockless")}
            | ({"on_trip"} if any(m.kind == "idle.percent" for m in measures) else set())
        )
        if states:
            vehicles = ("seconds", "fewest", "most", "rows", "several", "least_average", "most_average", "subs")
            found = self._pieces(VEHICLES, {"states": states}, ("vehicle_state", *vehicles))
            self._spread(found.with_columns(pl.col("seconds").cast(pl.Float64)), "vehicle_state", states, vehicles)
        if event_types := sorted({m.subject for m in measures if m.family == "events"}):
            found = self._pieces(EVENTS, {"event_types": event_types}, ("event_type", "events"))
            self._spread(found, "event_type", event_types, ("events",))
        locations = sorted(
            {m.subject for m in measures if m.family == "trips"}
            | ({"start"} if any(m.kind == "trips_per_vehicle.avg" for m in measures) else set())
        )
        if locations:
            trips = ("trips", "duration_n", "duration_sum", "duration_sq", "distance_n", "distance_sum", "distance_sq")
            found = self._pieces(TRIPS, {"locations": locations}, ("location", *trips))
            self._spread(found, "location", locations, trips)
        if any(m.kind in ("active.avg", "inactive.avg", "active.percent") for m in measures) and self.spans:
            self._read_activity()
        median_locations = sorted({m.subject for m in measures if m.family == "trips" and m.kind.endswith(".med")})
        for location in median_locations:
            medians = ("duration_median", "distance_median")
            found = self._pieces(MEDIANS, {"location": location}, medians)
            self.pieces.append(found.rename({name: piece(name, location) for name in medians}))

    def _read_activity(self) -> None:
        """The active seconds of each row: summed from the stored pieces for PT15M and PT1H, read from each vehicle's
        state timeline for the longer intervals."""
        if self.query.interval in ACTIVE_PIECE_INTERVALS:
            found = self._pieces(ACTIVE_PIECES, {"interval_duration": self.query.interval}, (ACTIVE_SECONDS,))
        else:
            activity = {
                "first": self.spans[0].start,
                "last": self.spans[-1].end,
                "zones": sorted({geography.zone_id for geography in self.geographies}),
                "deployed_states": list(DEPLOYED_STATES),
                "first_quarter": int(self.spans[0].start.timestamp()) // 900,
                "quarter_spans": self.quarter_spans,
            }
            found = self._pieces(ACTIVITY, activity, (ACTIVE_SECONDS,))
        self.pieces.append(found.with_columns(pl.col(ACTIVE_SECONDS).cast(pl.Float64)))

    def _keys(self) -> pl.DataFrame:
        """Every row: each whole interval with each combination of the dimensions' values (every selected geography,
        the providers and vehicle types found), so a place or hour without trips has its row too; with the
        interval's length and how many quarters and shorter intervals it has."""
        values: list[list[str]] = []
        for name in self.dimensions:
            if name == "geography_id":
                values.append(sorted(g.geography_id for g in self.geographies))
            else:
                found: set[str] = set()
                for pieces in self.pieces:
                    found.update(pieces[name].drop_nulls().to_list())
                values.append(sorted(found))
        keys = list(product([span.index for span in self.spans], *values))
        columns = list(zip(*keys, strict=True)) if keys else [()] * (1 + len(values))
        table = pl.DataFrame(
            {"span": pl.Series(columns[0], dtype=pl.Int32)}
            | {
                name: pl.Series(column, dtype=pl.String)
                for name, column in zip(self.dimensions, columns[1:], strict=True)
            }
        )
        spans = pl.DataFrame(
            {
                "span": pl.Series([span.index for span in self.spans], dtype=pl.Int32),
                "span_seconds": pl.Series([span.seconds for span in self.spans], dtype=pl.Float64),
                "span_quarters": pl.Series(
                    [self.span_quarters.get(span.index, 0) for span in self.spans], dtype=pl.Int64
                ),
                "span_subs": pl.Series([self.span_subs.get(span.index, 0) for span in self.spans], dtype=pl.Int64),
            }
        )
        table = table.join(spans, on="span", how="left", maintain_order="left")
        undelivered = self._undelivered_rows()
        on = [name for name in undelivered.columns if name != UNDELIVERED]
        return table.join(undelivered, on=on, how="left", maintain_order="left").with_columns(
            pl.col(UNDELIVERED).fill_null(False)
        )

    def _undelivered_rows(self) -> pl.DataFrame:
        """The rows that read a zone which has not delivered their interval whole: by interval and geography with
        the geography_id dimension, else by interval (a row then sums every selected zone)."""
        if "geography_id" in self.query.dimensions:
            pairs = [
                (span, geography.geography_id)
                for span, zones in self.undelivered.items()
                for geography in self.geographies
                if geography.zone_id in zones
            ]
            return pl.DataFrame(
                {
                    "span": pl.Series([span for span, _ in pairs], dtype=pl.Int32),
                    "geography_id": pl.Series([geography for _, geography in pairs], dtype=pl.String),
                    UNDELIVERED: pl.Series([True] * len(pairs), dtype=pl.Boolean),
                }
            )
        spans = [span for span, zones in self.undelivered.items() if zones]
        return pl.DataFrame(
            {
                "span": pl.Series(spans, dtype=pl.Int32),
                UNDELIVERED: pl.Series([True] * len(spans), dtype=pl.Boolean),
            }
        )

    def _several(self, measure: Measure) -> QueryError:
        return QueryError(
            "dimensions",
            f"{measure.name} of several geographies, providers or vehicle types "
            "is not the sum of theirs: add the dimensions (or filter one value)",
        )

    def response_json(self) -> tuple[int, bytes]:
        """How many rows the response has, and its JSON body: the rows written by Polars from the row table's
        columns, never each value a Python object (the body of a month by hour and area is some 4 MB)."""
        self.read()
        names = ["interval_start", *self.dimensions]
        columns = [{"name": "interval_start", "column_type": "dimension", "data_type": "datetime"}]
        columns += [{"name": name, "column_type": "dimension", "data_type": "string"} for name in names[1:]]
        columns += [{"name": m.name, "column_type": "metric", "data_type": m.data_type} for m in self.query.measures]
        head = {"id": str(uuid.uuid4()), "query": {**self.query.echo, "k_value": self.k}, "columns": columns}
        table = self._keys()
        rows = ""
        if not table.is_empty():
            keys = ["span", *self.dimensions]
            for pieces in self.pieces:
                table = table.join(pieces, on=keys, how="left", maintain_order="left")
            texts = [self._json_of(table["span"], {span.index: self._start(span) for span in self.spans})]
            texts += [self._json_of(table[name], {value: value for value in table[name].unique()}) for name in keys[1:]]
            texts += measure_json(table, list(self.query.measures), self.k, self._several)
            row = pl.concat_str(pl.lit("["), pl.concat_str(texts, separator=","), pl.lit("]"))
            rows = pl.select(row.str.join(",")).item()
        body = f'{_json(head)[:-1]},"rows":[{rows}]}}'
        return table.height, body.encode()

    def _start(self, span: Interval) -> str | int:
        return formatted(span.start, self.query.zone, self.query.numeric)

    @staticmethod
    def _json_of(column: pl.Series, values: Mapping[Any, Any]) -> pl.Series:
        """Each row's JSON text of `column`, its values being few: each written once, by Python's own encoder."""
        return column.replace_strict({key: _json(value) for key, value in values.items()}, return_dtype=pl.String)


def _json(value: object) -> str:
    """JSON text as the API writes it (as Starlette's JSONResponse does: compact, UTF-8, no NaN)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
