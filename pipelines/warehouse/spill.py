"""The hours after a window that a window build's changes reach into, and the models rebuilt for them.

A row of a model with `reaches: <column>` (the vehicle state timeline: a state lasts from its event to the vehicle's
next one) holds from its incremental column to that column. When a late delivery to an old hour changes such a row
that runs on past the window's end (a breakdown at 10:55 whose state lasts until the next event at 12:10), the
rows its readers hold for the later hours were computed from the state as it was, and a full build would compute
them from the new one. A window build therefore notes, for each zone, how far the rows it replaced or inserted
differently reached, and then rebuilds the models reading them (and their readers) for the hours from the window's
end to there and the hour after it (a piece of core.int_metrics_activity is an hour long, so it ends up to 45
minutes after a state it holds), within the zone's delivered hours, a day at a time (SPILL_CHUNK: a state left
open in the middle of the history reaches to the horizon), replacing the rows of the zones whose changes reach
that far only (another zone's later hours did not change). A rebuild that changes nothing, and the newest hour's
build (nothing is delivered after it), rebuild nothing more.

A redelivery may also withdraw every row a series had in the window (every event a vehicle had in an old hour).
The row before them, which began before the window and ended at the first of them, is then returned by nothing the
window holds, yet its end is another now (the vehicle's next event after the window, or none). A window build
finds these stranded rows and has the model return them too: it binds their keys and incremental values as
`$reaching` (a list of structs), and the model adds their series to the window's (vehicle_state_intervals adds
their vehicles to the window's), so their end is found anew as a full build finds it, and their change spills as
any other.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from pipelines.warehouse.models import Model
from pipelines.warehouse.sqltext import sql_text
from pipelines.warehouse.window import Window

# Per zone, the latest time a row a window build changed reached to (an open row: 'infinity', to the horizon).
NOTE_TABLE = "create temp table if not exists changed_reaches (zone_id varchar, reach timestamptz)"
NOTE = """
insert into changed_reaches
with
    stored as (select {key} as changed_key, * from {schema}.{name} where rowid in ({body})),
    returned as (select {key} as changed_key, * from window_rows)
select
    coalesce(stored.zone_id, returned.zone_id),
    max(greatest(
        if(stored.changed_key is null, null, coalesce(stored.{reach}, 'infinity'::timestamptz)),
        if(returned.changed_key is null, null, coalesce(returned.{reach}, 'infinity'::timestamptz))
    )),
from stored
full join returned on stored.changed_key = returned.changed_key
where stored is distinct from returned
group by all
"""
# The stored rows that began before the window and ended at a row of the window that the window no longer returns
# (its key withdrawn), and are not returned themselves: what ended them is gone. `replaced_rows` holds the window's
# stored rows (see Warehouse._run); a row withdrawn from the window is one of them whose key is not returned.
WITHDRAWN = """
select distinct {column} from replaced_rows
where {column} >= $window_start and {column} < $window_end and {key} not in (select {key} from window_rows)
"""
# Looked for only when the window withdrew a row: reading the stored ends costs more than all of the above.
STRANDED = """
select {body} from {schema}.{name}
where
    {column} < $window_start
    and {reach} in (select unnest($withdrawn))
    and {key} not in (select {key} from window_rows)
"""
SPILL_CHUNK = timedelta(days=1)
"""The longest window a spill rebuilds at once, each in a transaction of its own. What the readers hold in memory
grows with their window (an open state changed in the middle of the 30-day 10,000-vehicle city spills 14 days: 3.1
GB in one window, at the build's 3 GB limit, against 1.1 GB in day-long ones, for 37% more CPU: 62 -> 85 s), and a
spill of a year's history must not need a year's memory. A spill shorter than a day, the usual one, is one window
as before."""
REACHING = "reaching"
"""The parameter that binds the stranded rows (their unique key and incremental column) to a model with `reaches`."""
# Per zone, the end of the hour after the one the change reached into, within the zone's delivered hours.
REACHED = """
select
    reaches.zone_id,
    max(least(horizons.horizon, date_trunc('hour', reaches.reach - interval 1 microsecond) + interval 2 hour)),
from changed_reaches as reaches
inner join core.int_zone_horizons as horizons on reaches.zone_id = horizons.zone_id
group by reaches.zone_id
"""
SPILLED_ZONES = "spilled_zones"
"""The parameter that binds a spill's zones to the statements of a spill pass that keep to them."""
SPILLED_ZONE = "list_contains($spilled_zones, zone_id)"
"""A row of a spill's zones. A filter DuckDB pushes down into most readers' SQL (a day of int_metrics_activity for
a zone that did not spill: 0.90 -> 0.04 s CPU), where a semi join on the zones' list is read after the work."""


@dataclass(frozen=True)
class Spill:
    """Hours after a window that its changes reached into, and the zones whose changes reached them."""

    window: Window
    zones: tuple[str, ...]
    """Only these zones' rows of the readers are rebuilt: another zone's later hours are as they were."""


def note_changed_reach(con: duckdb.DuckDBPyConnection, model: Model, replaced: str, values: dict[str, Any]) -> None:
    """Before a window build replaces `model`'s stored rows `replaced` (a query of their row ids, taking `values`)
    by `window_rows`, note how far the rows that differ between the two reached."""
    assert model.reaches is not None
    con.execute(NOTE_TABLE)
    note = sql_text(
        NOTE, body=replaced, key=model.unique_key, reach=model.reaches, schema=model.schema, name=model.name
    )
    con.execute(note, values)


def stranded_rows(con: duckdb.DuckDBPyConnection, model: Model, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored rows of `model` that began before the window and ended at a row the window withdrew, each as its
    unique key and incremental column (the value of `$reaching`); none when the window withdrew nothing. Read after
    the window's rows (`window_rows`) and the stored rows they replace (`replaced_rows`) are staged."""
    assert model.reaches is not None and model.incremental_column is not None
    window = {"window_start": values["window_start"], "window_end": values["window_end"]}
    withdrawn = sql_text(WITHDRAWN, key=model.unique_key, column=model.incremental_column)
    ends = [end for (end,) in con.execute(withdrawn, window).fetchall()]
    if not ends:
        return []
    columns = (*model.unique_key, model.incremental_column)
    stranded = sql_text(
        STRANDED,
        key=model.unique_key,
        column=model.incremental_column,
        reach=model.reaches,
        body=", ".join(sql_text("{c}", c=c) for c in columns),
        schema=model.schema,
        name=model.name,
    )
    rows = con.execute(stranded, {"window_start": window["window_start"], "withdrawn": ends}).fetchall()
    return [dict(zip(columns, row, strict=True)) for row in rows]


def spilled_windows(con: duckdb.DuckDBPyConnection, window: Window) -> list[Spill]:
    """The hours after `window` whose rows the changes noted during its build reach into, in windows of at most
    SPILL_CHUNK, each with the zones whose changes reach it (none when nothing reached past `window`); and forget
    the notes for the next window."""
    con.execute(NOTE_TABLE)
    noted = con.execute("select count(*) from changed_reaches").fetchall()[0][0]
    # Nothing noted (no model with `reaches` built, or no row of it changed): no spill, and no read of the zones'
    # horizons (a build of a selection may run where core.int_zone_horizons is not built yet).
    rows: list[tuple[str, datetime | None]] = con.execute(REACHED).fetchall() if noted else []
    con.execute("drop table changed_reaches")
    reached = {zone: end for zone, end in rows if end is not None and end > window[1]}
    if not reached:
        return []
    return [
        Spill(chunk, tuple(sorted(zone for zone, end in reached.items() if end > chunk[0])))
        for chunk in chunks((window[1], max(reached.values())))
    ]


def chunks(window: Window) -> list[Window]:
    """`window` cut into consecutive windows of SPILL_CHUNK from its start, the last one shorter."""
    start, end = window
    cuts = [start + n * SPILL_CHUNK for n in range(math.ceil((end - start) / SPILL_CHUNK))]
    return [(cut, min(cut + SPILL_CHUNK, end)) for cut in cuts]


def readers(models: Mapping[str, Model], python_inputs: Mapping[str, Iterable[str]]) -> set[str]:
    """The models that read a model with `reaches`, directly or through others."""
    inputs = {name: set(model.inputs) for name, model in models.items()}
    inputs.update({name: set(read) for name, read in python_inputs.items()})
    found = {name for name, model in models.items() if model.reaches}
    reading: set[str] = set()
    while True:
        more = {name for name, read in inputs.items() if read & (found | reading)} - reading
        if not more:
            return reading
        reading |= more
