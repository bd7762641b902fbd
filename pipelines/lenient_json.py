"""Complete JSON that strict decoders refuse: NaN, Infinity, numbers beyond a double, lone surrogates, non-UTF-8.

One such value in one record makes msgspec refuse the whole response, and a refused body looks like a cut one.
Python's own decoder reads them all (and still refuses a body that is cut short), so a body msgspec refuses is read
again here: a body read here is complete (the client does not fetch it again), and its records are judged one by
one, each bad value named by its place (`$.start_location.lat`). This path runs only when the strict decode fails.
"""

import json
import math
from dataclasses import dataclass
from typing import Any

INT64 = 2**63


@dataclass(frozen=True)
class Unreadable:
    """A record strict JSON cannot carry: why (naming each bad value's place) and its text."""

    reason: str
    raw: str


class _NotANumber(float):
    """NaN, Infinity or a number beyond a double, with the text the body gave for it."""

    text: str

    def __new__(cls, text: str) -> "_NotANumber":
        self = super().__new__(cls, "nan")
        self.text = text
        return self


def _number(text: str) -> float:
    value = float(text)
    return _NotANumber(text) if math.isinf(value) else value


def loads(body: bytes) -> Any:
    """The body as Python values, non-finite numbers marked; raises ValueError when it is not complete JSON."""
    # surrogateescape: a byte that is not UTF-8 becomes a lone surrogate, found (and named) like an escaped one.
    text = body.decode("utf-8", "surrogateescape")
    return json.loads(text, parse_constant=_NotANumber, parse_float=_number)


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def problems(value: Any, where: str = "$") -> list[str]:
    """Each value of a decoded record that strict JSON (and the lake's columns) cannot hold, named by its place."""
    found: list[str] = []
    if isinstance(value, _NotANumber):
        found.append(f"`{where}`: {value.text} is not a finite JSON number")
    elif isinstance(value, str):
        if _has_surrogate(value):
            found.append(f"`{where}`: text with a lone surrogate or bytes that are not UTF-8")
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if not -INT64 <= value < 2 * INT64:
            found.append(f"`{where}`: integer {value} is beyond 64 bits")
    elif isinstance(value, dict):
        for key, item in value.items():
            if _has_surrogate(key):
                found.append(f"`{where}`: a key with a lone surrogate or bytes that are not UTF-8")
            found.extend(problems(item, f"{where}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(problems(item, f"{where}[{index}]"))
    return found


def dumps(value: Any) -> str:
    """JSON text of a decoded value, non-finite numbers as the body wrote them (for the quarantine's `raw`)."""
    if isinstance(value, _NotANumber):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def explain(raw: bytes) -> str | None:
    """Why strict decoding refused one record, naming the place, when the lenient reading can tell."""
    try:
        value = loads(raw)
    except ValueError:
        return None
    return "; ".join(problems(value)) or None
