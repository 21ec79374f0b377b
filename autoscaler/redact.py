"""Keep secrets out of every log line, error message and output.

``register_secret`` is called for each token the configuration holds; ``redact`` replaces any
registered secret, and any password inside a URL, with ``[REDACTED]``.
"""

from __future__ import annotations

import re
import threading

_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "[REDACTED]"


def register_secret(value: str | None) -> None:
    """Remember a secret (tokens shorter than 6 characters are not worth masking everywhere)."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


#: how much of a foreign value (from Redis, a database, an endpoint, a platform) a message quotes
QUOTE_LIMIT = 60


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """A short, escaped prefix of foreign data, for an error message: the ``repr`` of at most
    ``limit`` characters (or bytes), then how much more there was. Control characters, quotes
    and newlines come out escaped, so the value can neither flood a log line nor forge one."""
    if isinstance(value, str | bytes | bytearray):
        kind = "characters" if isinstance(value, str) else "bytes"
        shown = repr(value[:limit])
        more = len(value) - limit
        return shown + (f" (+{more} more {kind})" if more > 0 else "")
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (over 4300 digits)
        return f"<{type(value).__name__} too long to show>"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... (+{len(text) - limit} more characters)"


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\x1b``, ``\\r``, ``\\n``...)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
