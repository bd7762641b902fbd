"""The MDS 1.2 and 0.4 mapping (pipelines/lake/mds_versions.py) against the specification texts it is derived from:
the 0.4.1 README's event table and schema, the 1.2 status_changes schema's state and event pairs, and the 2.0
micromobility state machine. The documented table (docs/mds_versions.md) is the data, row for row."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipelines.lake import mds_versions as v
from tests.conftest import SPECS

MDS = SPECS / "mds"
DOC = Path(__file__).resolve().parents[1] / "docs" / "mds_versions.md"
CODE = re.compile(r"`([a-z_]+)\s*`")


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after `heading`, header and rule left out."""
    after = text[text.index(heading) :]
    rows: list[list[str]] = []
    for line in after.splitlines()[1:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]


def codes(cell: str) -> list[str]:
    return CODE.findall(cell)


def pairs_0_4_readme() -> set[tuple[str, str]]:
    """(event_type, event_type_reason) of the 0.4.1 README's "Event Types" table; an empty first cell continues
    the event type above."""
    pairs = set()
    event_type = ""
    for cells in table_rows((MDS / "0.4.1" / "provider" / "README.md").read_text(), "### Event Types"):
        event_type = (codes(cells[0]) or [event_type])[0]
        pairs.add((event_type, codes(cells[2])[0]))
    return pairs


def schema_pairs(path: Path, first: str, second: str) -> set[tuple[str, str]]:
    """The (first, second) value pairs of a status_changes schema's "valid combinations" `oneOf`."""
    schema = json.loads(path.read_text())
    item = schema["properties"]["data"]["properties"]["status_changes"]["items"]
    (combinations,) = [c for c in item["allOf"] if "oneOf" in c]
    pairs = set()
    for branch in combinations["oneOf"]:
        props = branch["properties"]
        firsts = [props[first]["const"]] if "const" in props[first] else props[first]["enum"]
        seconds = props[second].get("contains", props[second])["enum"]
        pairs |= {(a, b) for a in firsts for b in seconds}
    return pairs


def micromobility_2_0() -> set[tuple[str, str]]:
    """(to-state, event type) of every row of the 2.0 "Vehicle State Events" table."""
    text = (MDS / "2.0" / "docs" / "modes" / "micromobility.md").read_text()
    return {(codes(cells[1])[0], codes(cells[2])[0]) for cells in table_rows(text, "### Vehicle State Events")}


def event_types_2_0() -> set[str]:
    text = (MDS / "2.0" / "docs" / "modes" / "event_types.md").read_text()
    return {codes(cells[0])[0] for cells in table_rows(text, "As with all MDS definitions")}


def test_the_04_table_is_the_spec_table_and_schema() -> None:
    readme = pairs_0_4_readme()
    assert len(readme) == 12  # 5 available, 1 reserved, 2 unavailable, 4 removed reasons
    assert readme == schema_pairs(
        MDS / "0.4.1" / "provider" / "dockless" / "status_changes.json", "event_type", "event_type_reason"
    )
    assert set(v.EVENTS_0_4) == readme
    assert set(v.EVENTS_0_4_WITHOUT_TRIP) <= readme


def test_every_04_pair_lands_on_a_20_transition() -> None:
    transitions = micromobility_2_0()
    assert ("on_trip", "trip_start") in transitions and len(transitions) > 40
    for mapped in (*v.EVENTS_0_4.values(), *v.EVENTS_0_4_WITHOUT_TRIP.values()):
        assert mapped in transitions, mapped


def test_every_12_pair_lands_on_a_20_transition() -> None:
    path = MDS / "1.2" / "provider" / "status_changes.json"
    pairs = schema_pairs(path, "vehicle_state", "event_types")
    definitions: dict[str, Any] = json.loads(path.read_text())["definitions"]
    assert set(v.STATES_1_2) == set(definitions["vehicle_state"]["enum"])
    assert set(v.EVENTS_1_2) == set(definitions["vehicle_event"]["enum"])
    transitions = micromobility_2_0()
    for state, event in pairs:
        mapped_state, (mapped_event,) = v.event_from_1_2(state, [event])
        assert (mapped_state, mapped_event) in transitions, (state, event)


def test_mapped_event_types_are_20_event_types() -> None:
    known = event_types_2_0()
    assert {"trip_start", "not_located", "provider_drop_off"} <= known
    mapped = {e for _, e in (*v.EVENTS_0_4.values(), *v.EVENTS_0_4_WITHOUT_TRIP.values())} | set(v.EVENTS_1_2.values())
    assert mapped <= known


def test_mappings_worked_by_hand() -> None:
    assert v.event_from_0_4("reserved", "user_pick_up", has_trip=True) == ("on_trip", ["trip_start"])
    assert v.event_from_0_4("reserved", "user_pick_up", has_trip=False) == ("reserved", ["reservation_start"])
    assert v.event_from_0_4("available", "user_drop_off", has_trip=True) == ("available", ["trip_end"])
    assert v.event_from_0_4("available", "user_drop_off", has_trip=False) == ("available", ["reservation_cancel"])
    assert v.event_from_0_4("unavailable", "low_battery", has_trip=False) == ("non_operational", ["battery_low"])
    assert v.event_from_0_4("removed", "service_end", has_trip=False) == ("removed", ["unspecified"])
    assert v.event_from_1_2("unknown", ["missing"]) == ("missing", ["not_located"])
    assert v.event_from_1_2("unknown", ["comms_lost"]) == ("non_contactable", ["comms_lost"])
    assert v.event_from_1_2("non_operational", ["trip_end", "battery_low"]) == (
        "non_operational",
        ["trip_end", "battery_low"],
    )
    assert v.vehicle_type_from_legacy("scooter") == "scooter_standing"


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: v.event_from_0_4("unavailable", "user_pick_up", True), "not an MDS 0.4 event_type"),
        (lambda: v.event_from_1_2("parked", ["trip_end"]), "not an MDS 1.2 state"),
        (lambda: v.event_from_1_2("available", ["teleported"]), "not MDS 1.2 vehicle events"),
        (lambda: v.event_from_1_2("available", []), "not MDS 1.2 vehicle events"),
        (lambda: v.vehicle_type_from_legacy("scooter_standing"), "not an MDS 1.2 or 0.4 vehicle type"),
    ],
)
def test_words_without_a_20_meaning_are_refused(call: Any, reason: str) -> None:
    with pytest.raises(v.UnmappedEvent, match=reason):
        call()


def test_the_documented_tables_are_the_data() -> None:
    text = DOC.read_text()
    documented_0_4 = {
        (codes(r[0])[0], codes(r[1])[0], r[2]): (codes(r[3])[0], codes(r[4])[0]) for r in table_rows(text, "## MDS 0.4")
    }
    trip_told = set(v.EVENTS_0_4_WITHOUT_TRIP)
    expected_0_4 = {(*k, "with" if k in trip_told else "any"): val for k, val in v.EVENTS_0_4.items()}
    expected_0_4 |= {(*k, "without"): val for k, val in v.EVENTS_0_4_WITHOUT_TRIP.items()}
    assert documented_0_4 == expected_0_4
    states = {codes(r[0])[0]: codes(r[1])[0] for r in table_rows(text, "1.2's states and event types")}
    assert states == v.STATES_1_2
    assert "`missing` when the last event is `missing`" in text and v.MISSING_1_2 == ("unknown", "missing")
    renamed = {
        codes(r[0])[0]: codes(r[1])[0] for r in table_rows(text, "Its event types are 2.0's but one") if codes(r[0])
    }
    assert renamed == {k: e for k, e in v.EVENTS_1_2.items() if k != e}
    types = {codes(r[0])[0]: codes(r[1])[0] for r in table_rows(text, "## Vehicle types")}
    assert types == v.VEHICLE_TYPES_LEGACY
