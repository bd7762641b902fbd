"""MDS Policy files against the official MDS 2.0 Policy schema: a bad file is named with its field, never a bare
RecursionError, DecodeError or TypeError; what is read but not judged is warned about and listed."""

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from pipelines.warehouse.policy import PolicyError, load_policy_rules
from pipelines.warehouse.policy_schema import SCHEMA_PATH, check_policy
from tests.conftest import SPECS
from tests.test_warehouse_compliance import CAP_POLICY, CITY

RULE_ID = CAP_POLICY["policies"][0]["rules"][0]["rule_id"]
# CAP_POLICY as the schema has it: a mode, no nulls for absent fields, an MDS 2.0 vehicle type.
VALID_POLICY: dict[str, Any] = copy.deepcopy(CAP_POLICY)
VALID_POLICY["policies"][0] |= {"mode_id": "micromobility"}
for absent in ("end_date", "prev_policies"):
    del VALID_POLICY["policies"][0][absent]
VALID_POLICY["policies"][0]["rules"][0]["vehicle_types"] = ["scooter_standing"]


def folder_with(tmp_path: Path, policies: Any, raw: bytes | None = None) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "policies.json").write_bytes(raw if raw is not None else json.dumps(policies).encode())
    (folder / "geographies.json").write_text(json.dumps({"version": "2.0.0", "geographies": [CITY]}))
    return folder


def cap(**rule_changes: Any) -> dict[str, Any]:
    policy = copy.deepcopy(VALID_POLICY)
    rule = policy["policies"][0]["rules"][0]
    for key, value in rule_changes.items():
        if value is None:
            rule.pop(key)
        else:
            rule[key] = value
    return policy


def test_the_bundled_schema_is_the_official_one() -> None:
    assert json.loads(SCHEMA_PATH.read_text()) == json.loads((SPECS / "mds/2.0/bundled/model_policy.json").read_text())


def test_a_valid_policy_is_read_without_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        rules = load_policy_rules(folder_with(tmp_path, VALID_POLICY))
    assert caplog.records == []
    assert rules.filter(rules["source"] == "policy")["not_judged_because"].to_list() == [None]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"policies": [', "policies.json: not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "policies.json: not JSON this reader can hold: nested too deep"),
        (b'{"policies": [1]}', "policies.json: policy 0: a policy must be a JSON object, not int"),
    ],
)
def test_a_file_that_is_not_a_policy_is_named(tmp_path: Path, raw: bytes, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy_rules(folder_with(tmp_path, None, raw))


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (cap(maximum="two"), "`$.rules[0].maximum`"),
        (cap(days=["funday"]), "`$.rules[0].days[0]`"),
        (cap(start_time="7am"), "`$.rules[0].start_time`"),
        (cap(states=["available"]), "`$.rules[0].states`"),
        (cap(minimum="one"), "`$.rules[0].minimum`"),
        (cap(rule_units="hours"), "rule_type 'count' with rule_units 'hours' breaks its variant"),
        (cap(geographies="e3ed0a0e-61d3-4887-8b6a-4af4f3769c14"), "`$.rules[0].geographies`"),
        ({"policies": [{**VALID_POLICY["policies"][0], "rules": [1]}]}, "`$.rules[0]`"),
        ({"policies": [{**VALID_POLICY["policies"][0], "start_date": "2026-01-01"}]}, "`$.start_date`"),
    ],
)
def test_a_field_the_marts_would_misread_stops_with_file_and_field(
    tmp_path: Path, policy: dict[str, Any], field: str
) -> None:
    with pytest.raises(PolicyError) as raised:
        load_policy_rules(folder_with(tmp_path, policy))
    assert "policies.json: policy 99f7a469-6e3a-4981-9313-c2f6c0bbd5ce" in str(raised.value)
    assert field in str(raised.value)


def test_other_departures_are_warnings_naming_file_and_field(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    policy = copy.deepcopy(VALID_POLICY)
    del policy["policies"][0]["description"]
    policy["policies"][0]["rules"][0]["maximum"] = 2.5  # MDS says integer; read as written
    with caplog.at_level(logging.WARNING):
        rules = load_policy_rules(folder_with(tmp_path, policy))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "policies.json" in warnings[0] and "(description)" in warnings[0] and "read anyway" in warnings[0]
    assert "`$.rules[0].maximum`" in warnings[1]
    assert rules.filter(rules["source"] == "policy")["value"].to_list() == [2.5]


@pytest.mark.parametrize(
    ("rule_type", "reason"),
    [
        ("parking_fee", "rule_type 'parking_fee' is not an MDS 2.0 rule type (count, time, speed, user)"),
        ("user", "rule_type 'user' is not judged by the compliance marts (count, speed and time are)"),
    ],
)
def test_a_rule_not_judged_is_warned_about_and_listed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, rule_type: str, reason: str
) -> None:
    with caplog.at_level(logging.WARNING):
        rules = load_policy_rules(folder_with(tmp_path, cap(rule_type=rule_type, rule_units=None)))
    *schema_warnings, warning = [r.getMessage() for r in caplog.records]
    assert all("read anyway" in w for w in schema_warnings)
    assert "policies.json" in warning and f"rule {RULE_ID} (City cap)" in warning and reason in warning
    listed = rules.filter(rules["source"] == "policy")
    assert listed.select("rule_type", "not_judged_because").rows() == [(rule_type, reason)]


def test_the_official_samples_are_read_with_warnings_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """MDS 1.2 samples (`scooter`, no `mode_id`, 1.x rate fields) are read, each departure warned about by name."""
    samples = SPECS / "samples" / "mds-official-examples" / "1.2.0" / "policy"
    with caplog.at_level(logging.WARNING):
        for path in sorted(samples.glob("*.json")):
            for index, policy in enumerate(json.loads(path.read_text())["data"]["policies"]):
                check_policy(policy, path, index)
    warned = {r.getMessage().split(": policy")[0] for r in caplog.records}
    assert warned == {str(path) for path in samples.glob("*.json")}
    assert any("`$.rules[0].vehicle_types[1]`: 'scooter' is not one of" in r.getMessage() for r in caplog.records)
