"""What the learned-state stores share: the encoded value and its bounds."""

from __future__ import annotations

import json
from collections.abc import Mapping

from autoscaler.ports import StoreError

#: a saved value larger than this is refused (a snapshot is a few kilobytes per process)
MAX_BYTES = 1_000_000


def encode(snapshots: Mapping[str, object]) -> str:
    text = json.dumps(dict(snapshots), separators=(",", ":"), allow_nan=False)
    if len(text) > MAX_BYTES:
        raise StoreError(f"learned state of {len(text)} bytes is over {MAX_BYTES}: not saved")
    return text


def decode(text: str | bytes | None) -> dict[str, object]:
    """The saved snapshots; ``{}`` when nothing (or nothing readable) is saved: an invalid value
    is ignored, never fatal (the policy learns again)."""
    if text is None or len(text) > MAX_BYTES:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items()}
