"""The caps on what a message can put into an execution's state (docs/operations.md, "Messages are untrusted").

A signal or update is untrusted JSON of any shape and size; the state is carried by continue-as-new and
answered by the `status` query, both under Temporal's 2 MB payload limit. Every value a message can leave
in the state is capped here, by its size as JSON (a control character takes six bytes there).
"""

from __future__ import annotations

import json
from typing import Any

MAX_NAME = 200
"""Characters of a step id, a person's name or a role in a message."""
MAX_TEXT = 4000
"""Characters of a note or a cancel reason."""
MAX_DATA_BYTES = 32_768
"""A completion's form data, as JSON."""
MAX_REJECTED = 50
"""Rejections kept in `status.rejected` (the latest); `status.rejected_count` counts them all."""
MAX_REJECTION_FIELD_BYTES = 256
"""Each value quoted from a refused message (step id, sender), as JSON."""
MAX_REASON_BYTES = 1024
"""A rejection's reason, as JSON."""
MAX_NOTES_BYTES = 65_536
"""The notes kept in the state together, as JSON (older ones stay in the audit trail)."""


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (UTF-8, as payloads carry it)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode())


def clip(text: str, max_bytes: int) -> str:
    """`text` cut so that, as JSON, it takes at most `max_bytes` (an ellipsis marks a cut)."""
    if json_size(text) <= max_bytes:
        return text
    cut = text[: max_bytes]
    while cut and json_size(cut + "…") > max_bytes:
        cut = cut[: len(cut) * 3 // 4]
    return cut + "…"


def quote(value: Any, max_bytes: int = MAX_REJECTION_FIELD_BYTES) -> str | None:
    """A value from an untrusted message as a short string: strings clipped, anything else as clipped JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return clip(value, max_bytes)
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)[: max_bytes]
    except (ValueError, RecursionError):  # a value json cannot write (nested too deep): say what it was
        text = f"<{type(value).__name__}>"
    return clip(text, max_bytes)
