"""City rules as MDS Policy: core.policy_rules, one row per rule of every policy file, plus the built-in defaults.

Policies are read from the JSON files of a folder (setting `FLEETLAKE_POLICY_DIR`; none by default): MDS 2.0 flat files
(`{"policies": [...]}`), MDS REST responses (`{"data": {"policies": [...]}}`) or a single policy object. A file in a
sub-folder named after a zone (`<dir>/<zone_id>/*.json`) applies to that zone only; a file at the top applies to
every zone (`zone_id` null). The geographies rules name (MDS Geography JSON, see policy_geographies.py) are
read from the same folder, into core.policy_geographies; a rule naming a geography the folder lacks is an error,
and a rule naming none applies zone-wide.

A rule holds on its `days` (local, default every day) between its `start_time` and `end_time` (local time of day,
default all day; a start after the end spans midnight): the marts ask `policy_rule_in_effect(days, start_time,
end_time, local_at)`, a macro every build connection defines (RULE_IN_EFFECT).

Within a policy the first rule a vehicle or trip matches holds (`rule_order`), as MDS Policy orders its rules.
Read as written but not judged: the events under a rule's `states` (the state alone decides), `provider_ids`
(one provider here), rates and fees, `user` rules.

`value` is the rule's `maximum` in one unit per rule type (count: devices, speed: kph, time: seconds), so the
compliance marts never convert units. Rows with `source = 'default'` are the fallbacks used when no policy says
otherwise (the idle limit, `FLEETLAKE_IDLE_LIMIT_HOURS`, 72 hours by default as in the MDS idle-time example);
speed limits and forbidden areas default to the zone API and GBFS geofencing, in SQL.
"""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import polars as pl

from pipelines.warehouse.frames import registered
from pipelines.warehouse.policy_geographies import GEOGRAPHIES_SCHEMA, geography_objects, geography_rows
from pipelines.warehouse.policy_schema import PolicySchemaError, check_policy, not_judged_because

log = logging.getLogger(__name__)
DEFAULT_IDLE_LIMIT_HOURS = 72.0
UNIT_FACTORS = {
    "devices": ("devices", 1.0),
    "kph": ("kph", 1.0),
    "mph": ("kph", 1.609344),
    "seconds": ("seconds", 1.0),
    "minutes": ("seconds", 60.0),
    "hours": ("seconds", 3600.0),
    "days": ("seconds", 86400.0),
}
POLICY_RULES_SCHEMA: dict[str, Any] = {
    "zone_id": pl.String,
    "policy_id": pl.String,
    "policy_name": pl.String,
    "rule_id": pl.String,
    "rule_order": pl.Int32,
    "rule_name": pl.String,
    "rule_type": pl.String,
    "rule_units": pl.String,
    "minimum": pl.Float64,
    "maximum": pl.Float64,
    "value": pl.Float64,
    "value_units": pl.String,
    "geographies": pl.List(pl.String),
    "states": pl.List(pl.String),
    "vehicle_types": pl.List(pl.String),
    "start_date": pl.Datetime("ms", "UTC"),
    "end_date": pl.Datetime("ms", "UTC"),
    "days": pl.List(pl.String),
    "start_time": pl.Time,
    "end_time": pl.Time,
    "source": pl.String,
    "source_file": pl.String,
    "not_judged_because": pl.String,
}


class PolicyError(ValueError):
    """A policy file that is not MDS Policy JSON (the message names the file, and the field when there is one)."""


DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
RULE_IN_EFFECT = """
create or replace temp macro policy_rule_in_effect(days, start_time, end_time, local_at) as
    (len(days) = 0 or list_contains(days, lower(strftime(local_at, '%a'))))
    and case
        -- A rule for every hour holds whatever the local time; another one is unknown (null) without it.
        when start_time is null and end_time is null then true
        when coalesce(start_time, time '00:00:00') <= coalesce(end_time, time '24:00:00')
            then cast(local_at as time) between coalesce(start_time, time '00:00:00')
                and coalesce(end_time, time '24:00:00')
        else cast(local_at as time) >= start_time or cast(local_at as time) <= end_time
    end
"""


def _moment(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _time_of_day(value: Any, path: Path, rule: dict[str, Any]) -> time | None:
    if value is None:
        return None
    try:
        return time.fromisoformat(str(value))
    except ValueError as error:
        raise PolicyError(f"{path}: rule {rule.get('rule_id')}: {value!r} is not a time of day (hh:mm:ss)") from error


def _days(value: Any, path: Path, rule: dict[str, Any]) -> list[str]:
    days = [str(day).lower()[:3] for day in value or []]
    if unknown := [day for day in days if day not in DAYS]:
        raise PolicyError(f"{path}: rule {rule.get('rule_id')}: unknown days {unknown} (sun, mon, ... sat)")
    return days


def _policies(document: Any, path: Path) -> tuple[list[dict[str, Any]], int | None]:
    """The policies of one file and the file-level `end_date`, whatever the wrapper."""
    if isinstance(document, dict) and isinstance(document.get("data"), dict):
        document = {**document["data"], "end_date": document.get("end_date")}
    if isinstance(document, dict) and isinstance(document.get("policies"), list):
        policies, end = document["policies"], document.get("end_date")
    elif isinstance(document, dict) and isinstance(document.get("rules"), list):
        policies, end = [document], None
    else:
        raise PolicyError(f"{path}: no `policies` list and no policy `rules`")
    for index, policy in enumerate(policies):
        try:
            check_policy(policy, path, index)
        except PolicySchemaError as error:
            raise PolicyError(str(error)) from None
    if end is not None and not isinstance(end, int):
        raise PolicyError(f"{path}: `end_date` {end!r} is not a timestamp (epoch milliseconds)")
    return policies, end


def _documents(folder: Path | None) -> Iterator[tuple[Path, str | None, Any]]:
    """Each JSON file of the policy folder, decoded, with the zone its sub-folder names (None at the top)."""
    if folder is None:
        return
    folder = Path(folder)
    if not folder.is_dir():
        raise PolicyError(f"{folder}: the policy folder does not exist")
    for path in sorted(folder.glob("*.json")):
        yield path, None, _decoded(path)
    for path in sorted(folder.glob("*/*.json")):
        yield path, path.parent.name, _decoded(path)


def _decoded(path: Path) -> Any:
    try:
        return msgspec.json.decode(path.read_bytes())
    except msgspec.DecodeError as error:
        raise PolicyError(f"{path}: not JSON: {error}") from None
    except RecursionError:
        raise PolicyError(f"{path}: not JSON this reader can hold: nested too deep") from None


def _rows(document: Any, path: Path, zone_id: str | None) -> list[dict[str, Any]]:
    policies, file_end = _policies(document, path)
    rows = []
    for policy in policies:
        end = policy.get("end_date") if policy.get("end_date") is not None else file_end
        for order, rule in enumerate(policy.get("rules") or []):
            units = rule.get("rule_units")
            value_units, factor = UNIT_FACTORS.get(units or "", (units, 1.0))
            maximum = rule.get("maximum")
            rows.append(
                {
                    "zone_id": zone_id,
                    "policy_id": policy.get("policy_id"),
                    "policy_name": policy.get("name"),
                    "rule_id": rule.get("rule_id"),
                    "rule_order": order,  # within its policy: the first rule a vehicle matches holds
                    "rule_name": rule.get("name"),
                    "rule_type": rule.get("rule_type"),
                    "rule_units": units,
                    "minimum": rule.get("minimum"),
                    "maximum": maximum,
                    "value": None if maximum is None else float(maximum) * factor,
                    "value_units": value_units,
                    "geographies": [str(g) for g in rule.get("geographies") or []],
                    # `states` is `{state: [events]}`; absent or empty means every state.
                    "states": sorted(rule.get("states") or {}),
                    "vehicle_types": [str(t) for t in rule.get("vehicle_types") or []],
                    "start_date": _moment(policy.get("start_date")),
                    "end_date": _moment(end),
                    "days": _days(rule.get("days"), path, rule),
                    "start_time": _time_of_day(rule.get("start_time"), path, rule),
                    "end_time": _time_of_day(rule.get("end_time"), path, rule),
                    "source": "policy",
                    "source_file": str(path),
                    "not_judged_because": not_judged_because(rule, path),
                }
            )
    return rows


def default_rules(idle_limit_hours: float) -> list[dict[str, Any]]:
    """The rules in force when no policy gives one (every zone)."""
    return [
        {
            "zone_id": None,
            "policy_id": None,
            "policy_name": "fleetlake defaults",
            "rule_id": None,
            "rule_order": 0,
            "rule_name": "idle limit",
            "rule_type": "time",
            "rule_units": "hours",
            "minimum": None,
            "maximum": idle_limit_hours,
            "value": idle_limit_hours * 3600.0,
            "value_units": "seconds",
            "geographies": [],
            "states": ["available"],
            "vehicle_types": [],
            "start_date": None,
            "end_date": None,
            "days": [],
            "start_time": None,
            "end_time": None,
            "source": "default",
            "source_file": None,
            "not_judged_because": None,
        }
    ]


def load_policy_geographies(folder: Path | None) -> pl.DataFrame:
    """Every geography of every Geography file under `folder` (if any)."""
    rows = [row for path, zone, document in _documents(folder) for row in geography_rows(document, path, zone)]
    geographies = pl.DataFrame(rows, schema=GEOGRAPHIES_SCHEMA, orient="row")
    # One geography in several files (beside several zones' policies, say) is one geography.
    geographies = geographies.unique([c for c in GEOGRAPHIES_SCHEMA if c != "source_file"], maintain_order=True)
    # Ids are meant to be unique, yet the official MDS samples give one to two geographies: every area given is
    # kept, and a rule naming the id holds in all of them.
    reused = geographies.filter(pl.col("geography_id").is_duplicated())["geography_id"].unique().to_list()
    if reused:
        log.warning("%s: geography ids given to more than one area, each area kept: %s", folder, sorted(reused))
    return geographies


def load_policy_rules(folder: Path | None, idle_limit_hours: float = DEFAULT_IDLE_LIMIT_HOURS) -> pl.DataFrame:
    """Every rule of every policy file under `folder` (if any), then the defaults."""
    rows: list[dict[str, Any]] = []
    known: set[str] = set()
    for path, zone, document in _documents(folder):
        geographies = geography_objects(document)
        if geographies:
            known.update(str(geography.get("geography_id")) for geography in geographies)
        else:
            rows.extend(_rows(document, path, zone))
    for row in rows:
        if missing := sorted(set(row["geographies"]) - known):
            raise PolicyError(
                f"{row['source_file']}: rule {row['rule_id']} ({row['rule_name']}) names geographies the policy "
                f"folder lacks: {', '.join(missing)}; add the agency's Geography API response (geographies.json)"
            )
    rows.extend(default_rules(idle_limit_hours))
    return pl.DataFrame(rows, schema=POLICY_RULES_SCHEMA, orient="row")


def build_policy_rules(con: duckdb.DuckDBPyConnection, folder: Path | None, idle_limit_hours: float) -> int:
    """The `policy_rules` python model: replaces core.policy_rules from the policy folder and the defaults."""
    rules = load_policy_rules(folder, idle_limit_hours)
    with registered(con, "loaded_policy_rules", rules):
        # Times of day as DuckDB TIME (Arrow hands over nanoseconds).
        con.execute(
            "create or replace table core.policy_rules as select * replace "
            "(start_time::time as start_time, end_time::time as end_time) from loaded_policy_rules"
        )
    return rules.height


def build_policy_geographies(con: duckdb.DuckDBPyConnection, folder: Path | None) -> int:
    """The `policy_geographies` python model: replaces core.policy_geographies from the policy folder."""
    geographies = load_policy_geographies(folder)
    with registered(con, "loaded_policy_geographies", geographies):
        con.execute("create or replace table core.policy_geographies as select * from loaded_policy_geographies")
    return geographies.height
