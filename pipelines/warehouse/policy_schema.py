"""MDS Policy files checked against the official MDS 2.0 Policy schema, with the file and the field named.

`schemas/mds_policy.json` is the Policy model of openmobilityfoundation/mds-openapi (CC-BY-4.0), bundled into one
JSON Schema 2020-12 document (each referenced model under `$defs`). A departure in a field the compliance marts
read, of a kind that would be misread (a rule that is not an object, a `maximum` that is not a number, `days` or
times of day that are not MDS values, `states` that is not an object), is a PolicyError naming the file, the
policy or rule and the field: the rules of a city are configuration, and judging trips by half of them would
report compliance that is not known. Other departures (a missing `description` or `published_date`, a rule
without `geographies`, read here as zone-wide) are warnings naming the file and field; the file is read anyway.

Rules of a type this project does not judge (`user`, or a type MDS 2.0 does not define) are warned about and
kept in core.policy_rules with `not_judged_because` saying why; the compliance marts judge `count`, `speed` and
`time` rules only.
"""

import json
import logging
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

log = logging.getLogger(__name__)
SCHEMA_PATH = Path(__file__).parent / "schemas" / "mds_policy.json"
JUDGED_RULE_TYPES = ("count", "speed", "time")
MDS_RULE_TYPES = ("count", "time", "speed", "user")
RULE_UNITS = {"count": ("devices",), "speed": ("kph", "mph"), "time": ("seconds", "minutes", "hours", "days")}
# What the compliance marts read (pipelines/warehouse/policy.py); a value of the wrong kind there is misread.
READ_POLICY_FIELDS = frozenset(("policy_id", "name", "start_date", "end_date", "rules"))
READ_RULE_FIELDS = frozenset(
    (
        "rule_id",
        "name",
        "rule_type",
        "rule_units",
        "minimum",
        "maximum",
        "geographies",
        "states",
        "vehicle_types",
        "days",
        "start_time",
        "end_time",
    )
)
REQUIRED = re.compile(r"'([^']+)' is a required property")


class PolicySchemaError(ValueError):
    """A policy file that breaks the MDS Policy schema where the marts would misread it."""


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _where(error: ValidationError) -> tuple[str, str | None, bool]:
    """The error's JSON path, the field it concerns and whether that field is one the marts read."""
    path = list(error.absolute_path)
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    missing = REQUIRED.search(error.message) if error.validator == "required" else None
    if path[:1] == ["rules"] and len(path) >= 2:
        field = str(path[2]) if len(path) > 2 else (missing.group(1) if missing else None)
        return where, field, field is None or field in READ_RULE_FIELDS
    field = str(path[0]) if path else (missing.group(1) if missing else None)
    return where, field, field is not None and field in READ_POLICY_FIELDS


def _misread(error: ValidationError, field: str | None) -> bool:
    """Whether the departure would make the marts misread the policy (else it is only a warning)."""
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        # The rule's type decides its units: a judged type with units of another would be misread. Other
        # departures of the rule's variant (MDS 1.x rate fields) are not read; other types are not judged.
        rule_type = error.instance.get("rule_type")
        return rule_type in JUDGED_RULE_TYPES and error.instance.get("rule_units") not in RULE_UNITS[rule_type]
    if error.validator in ("required", "additionalProperties", "minItems", "uniqueItems"):
        return False  # absent or extra: read with the documented default
    if error.instance is None:
        return False  # null where MDS wants the field absent: read as absent
    if field == "vehicle_types" and error.validator == "enum":
        return False  # MDS 1.x `scooter`: matched as written against the vehicles' own `vehicle_type`
    if field in ("policy_id", "rule_id") and error.validator == "pattern":
        return False  # a label, not a UUID: shown as written
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return False  # a number out of the schema's range (a start_date before 2018) is still read as written
    # A fraction where MDS says integer is read as written.
    fraction = isinstance(error.instance, int | float) and not isinstance(error.instance, bool)
    return not (field in ("minimum", "maximum") and fraction)


def check_policy(policy: Any, path: Path, index: int) -> None:
    """Validate one policy object; raise PolicySchemaError for what would be misread, warn about the rest."""
    label = f"{path}: policy {index}"
    if not isinstance(policy, dict):
        raise PolicySchemaError(f"{label}: a policy must be a JSON object, not {type(policy).__name__}")
    label = f"{path}: policy {policy.get('policy_id', index)}"
    fatal: list[str] = []
    for error in sorted(_validator().iter_errors(policy), key=lambda e: list(map(str, e.absolute_path))):
        where, field, read = _where(error)
        if error.validator == "oneOf" and isinstance(error.instance, dict):
            field = "rule_type/rule_units"
            units = error.instance.get("rule_units")
            error.message = (
                f"rule_type {error.instance.get('rule_type')!r} with rule_units {units!r} breaks its variant"
            )
        text = f"{label}: `{where}`{f' ({field})' if field and field not in where else ''}: {error.message[:200]}"
        if read and _misread(error, field):
            fatal.append(text)
        elif error.instance is not None:  # a null is read as the field's absence, as MDS samples write it
            log.warning("%s (not MDS Policy 2.0; read anyway)", text)
    if fatal:
        raise PolicySchemaError("; ".join(fatal))


def not_judged_because(rule: dict[str, Any], path: Path) -> str | None:
    """Why a rule is not judged by the compliance marts (None when it is); warns naming the file and rule."""
    rule_type = rule.get("rule_type")
    if rule_type in JUDGED_RULE_TYPES:
        return None
    if rule_type in MDS_RULE_TYPES:
        reason = f"rule_type {rule_type!r} is not judged by the compliance marts (count, speed and time are)"
    else:
        reason = f"rule_type {rule_type!r} is not an MDS 2.0 rule type ({', '.join(MDS_RULE_TYPES)})"
    log.warning("%s: rule %s (%s): %s; the rule is not judged", path, rule.get("rule_id"), rule.get("name"), reason)
    return reason
