"""Credentials out of every error text: one function applied wherever an error becomes a log line, metadata or
console output.

A provider's error body can echo the request (its Authorization header, a form with the client secret, the token
reply itself), and that text travels into exception messages, Dagster's event storage and compute logs. `scrub`
removes credentials by their shape (bearer and basic authorization, `X-Auth-Token`, `access_token`,
`client_secret`, passwords in URLs) and by their value (every `Secret` of the process and every access token the
client received), so a token is removed even where it appears bare.
"""

import re
import threading
from collections import OrderedDict

MASK = "***"
MIN_SECRET_LENGTH = 6
"""Shorter values are not masked by value (they would mask ordinary words); their shapes still are."""
REMEMBERED_LIMIT = 256
"""Access tokens are remembered newest first up to this many: a process running for months gets ~100 a day."""

_NAMES = r"(?:access_token|refresh_token|id_token|client_secret|auth_token|api_key|apikey|password|secret|token)"
_HEADER_NAMES = r"(?:x-auth-token|x-api-key|access_token|refresh_token|client_secret|password)"
_SHAPES = (
    # Authorization: Bearer <token> / Basic <base64>, in headers, reprs and prose alike.
    (re.compile(r"\b(Bearer|Basic)(\s+|%20|\+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE), rf"\1\2{MASK}"),
    # "name": "value" (JSON) and name=value (forms, query strings, logfmt) for every name that carries a credential.
    (re.compile(rf'("{_NAMES}"\s*:\s*")[^"]*', re.IGNORECASE), rf"\1{MASK}"),
    (re.compile(rf"(\b{_NAMES}=)[^\s&,;]+", re.IGNORECASE), rf"\1{MASK}"),
    # Header-like "name: value" for the unambiguous names (prose such as "token: check ..." stays readable).
    (re.compile(rf"(\b{_HEADER_NAMES}\s*:\s*)[^\s,;]+", re.IGNORECASE), rf"\1{MASK}"),
    # scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE), rf"\1{MASK}@"),
)

_known: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()


def remember_secret(value: str) -> None:
    """Mask `value` wherever it appears from now on (client secrets, zone API tokens, access tokens)."""
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        _known[value] = None
        _known.move_to_end(value)
        while len(_known) > REMEMBERED_LIMIT:
            _known.popitem(last=False)


def scrub(text: str) -> str:
    """`text` without credentials: known secret values and anything shaped like one are replaced by ***."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text
