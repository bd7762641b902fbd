"""Faults the embedded provider can inject, each off by default.

Transport faults (5xx, 429 bursts, slow or cut responses, early token expiry) are drawn per request; data
faults (duplicated, late, malformed and later-corrected records) are decided per record from the seed, so repeated
calls at one time agree and a client that retries and re-reads converges on exactly the true records.
"""

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Faults:
    server_error_rate: float = 0.0
    """Share of requests answered 500/502/503."""
    burst_429_rate: float = 0.0
    """Chance per request of starting a 429 storm of `burst_429_seconds` (with Retry-After)."""
    burst_429_seconds: float = 2.0
    slow_rate: float = 0.0
    """Share of requests delayed by up to `slow_seconds`."""
    slow_seconds: float = 1.5
    cut_rate: float = 0.0
    """Share of 200 responses whose body is cut short mid-JSON."""
    token_lifetime_s: float | None = None
    """Tokens silently expire after this many seconds although `expires_in` says 900."""
    duplicate_rate: float = 0.0
    """Share of records sent twice in the same response."""
    late_rate: float = 0.0
    """Share of records published hours after the hour they belong to has been served."""
    late_max_s: float = 4 * 3600.0
    malformed_rate: float = 0.0
    """Share of records followed by a corrupted copy (wrong types, missing fields, impossible coordinates)."""
    correction_rate: float = 0.0
    """Share of trips first served with a preliminary distance (10-60% too long, as an odometer reading before
    the GPS track is cleaned), served corrected from 5 minutes to `correction_max_s` after their hour was first
    served; the correction is the truth. A client that re-ingests the hour sees the same trip with other content."""
    correction_max_s: float = 3 * 3600.0
    # A provider that does not play fair (fleetlake_provider/hostile.py): bounded by the client, never absorbed.
    trickle_rate: float = 0.0
    """Share of 200 responses whose body trickles out one byte every `trickle_seconds`."""
    trickle_seconds: float = 2.0
    endless_paging_rate: float = 0.0
    """Share of MDS responses whose `links.next` leads on forever (ever new URLs, empty pages)."""
    retry_after_http_date: float = 0.0
    """1: 429s give Retry-After as an HTTP date (RFC 9110) instead of delay-seconds."""
    gzip_bomb_rate: float = 0.0
    """Share of 200 responses replaced by `gzip_bomb_bytes` of gzip-compressed zeros."""
    gzip_bomb_bytes: float = 2.0 * 2**30
    bad_token_rate: float = 0.0
    """Share of token replies a client cannot use: `expires_in: "soon"`, or no `access_token`."""
    date_minus_zero: float = 0.0
    """1: Date headers (and HTTP-date Retry-After) end in RFC 5322's `-0000` instead of `GMT`."""
    echo_credentials_rate: float = 0.0
    """Share of MDS, GBFS and zone API requests answered 400 with a body echoing their Authorization and
    X-Auth-Token headers."""
    implausible_rate: float = 0.0
    """Share of records followed by a well-typed but implausible copy under its own id: a time in seconds, an end
    before the start, a ten-year trip, a (0, 0) location, an unknown vehicle state, an id with a final newline,
    a NaN (which makes the whole page invalid strict JSON)."""
    contradicting_rate: float = 0.0
    """Share of non-trip events whose `event_types` the MDS state machine cannot end in their `vehicle_state`
    (the state, which drives occupancy, is left as it is)."""

    @classmethod
    def all_on(cls) -> "Faults":
        """Every fault at a rate that a robust client must absorb without losing or duplicating data."""
        return cls(
            server_error_rate=0.05,
            burst_429_rate=0.01,
            burst_429_seconds=1.0,
            slow_rate=0.03,
            slow_seconds=0.5,
            cut_rate=0.03,
            token_lifetime_s=20.0,
            duplicate_rate=0.02,
            late_rate=0.03,
            late_max_s=3 * 3600.0,
            malformed_rate=0.01,
        )

    @classmethod
    def parse(cls, text: str | None) -> "Faults":
        """Read `all`, `none` or `name=value,...` (this class's field names), as the CLI takes them."""
        text = (text or "").strip()
        if text in ("", "none", "off"):
            return cls()
        base = cls()
        overrides: dict[str, float] = {}
        known = {f.name for f in fields(cls)}
        for part in filter(None, (p.strip() for p in text.split(","))):
            if part == "all":
                base = cls.all_on()
                continue
            name, sep, value = part.partition("=")
            if not sep or name not in known:
                raise ValueError(f"unknown fault {part!r}; expected 'all' or one of {sorted(known)} as name=value")
            overrides[name] = float(value)
        return replace(base, **overrides)

    @property
    def any(self) -> bool:
        return self != Faults()
