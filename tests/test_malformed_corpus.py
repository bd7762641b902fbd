"""The malformed-record corpus (tests/malformed_records.json): each bad record beside its good one.

Every bad record is quarantined with a reason naming its field, or kept and flagged in staging; every good one is
kept exactly as it parses alone; and the whole corpus is counted.
"""

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from polars.testing import assert_frame_equal

from pipelines.lake.datasets import DATASETS, parse

CORPUS = json.loads((Path(__file__).parent / "malformed_records.json").read_text())
CASES: list[dict[str, Any]] = CORPUS["cases"]
HOUR = datetime(2026, 3, 28, 10, tzinfo=UTC)
WINDOW = (HOUR, HOUR + timedelta(hours=1))
CLOCK = HOUR + timedelta(hours=1, minutes=5)  # received five minutes after the hour ended
OTHER_ID = "99999999-9999-4999-8999-999999999999"


def _set(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        record = record[key]
    record[last] = value


def _delete(record: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    for key in parents:
        record = record[key]
    del record[last]


def mutated(case: dict[str, Any], *, new_id: bool = False) -> str:
    """The bad record's JSON text: the good record with the case's mutation."""
    record = copy.deepcopy(CORPUS["good"][case["dataset"]])
    for path, value in case.get("set", {}).items():
        _set(record, path, value)
    for path in case.get("delete", []):
        _delete(record, path)
    if new_id:
        record[DATASETS[case["dataset"]].key[0]] = OTHER_ID
    text = msgspec.json.encode(record).decode()
    if "text" in case:
        old, new = case["text"]
        assert old in text, f"{case['case']}: {old!r} is not in the good record"
        text = text.replace(old, new, 1)
    return text


def body(dataset: str, records: list[str]) -> bytes:
    """A response holding `records` (JSON texts) where the dataset's records belong; \\udcXX becomes byte XX."""
    text = "[" + ",".join(records) + "]"
    for key in reversed(DATASETS[dataset].path):
        text = f'{{"{key}":{text}}}'
    return text.encode("utf-8", "surrogateescape")


def good_text(dataset: str) -> str:
    return msgspec.json.encode(CORPUS["good"][dataset]).decode()


def parsed(dataset: str, records: list[str]) -> Any:
    ds = DATASETS[dataset]
    return parse(ds, [body(dataset, records)], WINDOW if ds.kind == "hourly" else None, clock=CLOCK)


def test_the_corpus_has_80_malformed_mds_and_gbfs_records() -> None:
    assert len(CASES) >= 80
    assert len({(c["dataset"], c["case"]) for c in CASES}) == len(CASES)
    datasets = {c["dataset"] for c in CASES}
    assert {"mds_trips", "mds_events", "gbfs_vehicle_status", "gbfs_station_status"} <= datasets
    assert {c["outcome"] for c in CASES} == {"quarantine", "flag"}


@pytest.mark.parametrize("dataset", sorted(CORPUS["good"]))
def test_every_good_record_is_kept(dataset: str) -> None:
    result = parsed(dataset, [good_text(dataset)])
    assert (result.received, result.frame.height, result.quarantined) == (1, 1, [])


QUARANTINED = [c for c in CASES if c["outcome"] == "quarantine"]


@pytest.mark.parametrize("case", QUARANTINED, ids=[f"{c['dataset']}: {c['case']}" for c in QUARANTINED])
def test_a_malformed_record_is_quarantined_naming_its_field_and_its_good_neighbour_kept(case: dict[str, Any]) -> None:
    dataset = case["dataset"]
    result = parsed(dataset, [good_text(dataset), mutated(case)])
    assert result.received == 2
    assert [q.index for q in result.quarantined] == [1], [q.reason for q in result.quarantined]
    assert case["field"] in result.quarantined[0].reason
    assert result.quarantined[0].raw  # the record's text is kept
    assert_frame_equal(result.frame, parsed(dataset, [good_text(dataset)]).frame)


def test_the_corpus_parsed_as_one_response_per_dataset_counts_every_record() -> None:
    """All bad records of a dataset in one response with its good one: received = kept + quarantined."""
    kept = quarantined = 0
    for dataset in sorted({c["dataset"] for c in QUARANTINED}):
        bad = [mutated(c) for c in QUARANTINED if c["dataset"] == dataset]
        result = parsed(dataset, [good_text(dataset), *bad])
        assert result.received == 1 + len(bad)
        assert [q.index for q in result.quarantined] == list(range(1, 1 + len(bad)))
        kept += result.frame.height
        quarantined += len(result.quarantined)
    assert quarantined == len(QUARANTINED)
    assert kept == len({c["dataset"] for c in QUARANTINED})


FLAGGED = [c for c in CASES if c["outcome"] == "flag"]


@pytest.mark.parametrize("case", FLAGGED, ids=[f"{c['dataset']}: {c['case']}" for c in FLAGGED])
def test_a_flagged_record_reaches_the_lake(case: dict[str, Any]) -> None:
    """Flags are judged in staging (test_bad_records.py builds it); the lake keeps both records."""
    dataset = case["dataset"]
    result = parsed(dataset, [good_text(dataset), mutated(case, new_id=True)])
    assert (result.received, result.frame.height, result.quarantined) == (2, 2, [])
    assert result.frame[DATASETS[dataset].key[0]].to_list()[1] == OTHER_ID


def test_flagged_cases_name_their_flags() -> None:
    """state_contradicts_event: a column of stg_mds__events; far_from_zone: trips.is_far_from_zone and
    data_quality_hourly (test_bad_records.py builds both)."""
    assert {c["field"] for c in FLAGGED} == {"state_contradicts_event", "far_from_zone"}
    assert sorted({c["dataset"] for c in FLAGGED}) == ["mds_events", "mds_trips"]
