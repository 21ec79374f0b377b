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
