"""Valid label values and object names built from other names, the one way every layer does it.

A label value is at most 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric;
an object name (RFC 1123 subdomain) at most 253 of [a-z0-9.-]. Names built from other names
("<workload>-<cluster>-e<epoch>") can exceed either, so long ones keep a readable prefix and
end in a short hash of the whole: distinct inputs stay distinct, and the same input always
gives the same value (the hub and the agent compute them independently).
"""

from __future__ import annotations

import hashlib
import re

LABEL_VALUE_MAX = 63
NAME_MAX = 253
_INVALID_LABEL = re.compile(r"[^A-Za-z0-9_.-]")
_INVALID_NAME = re.compile(r"[^a-z0-9.-]")
_HASH_LEN = 10


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()[:_HASH_LEN]


def label_value(raw: str) -> str:
    """A valid label value for `raw`: itself if valid, else a cleaned prefix plus a short hash."""
    clean = _INVALID_LABEL.sub("-", raw)
    if clean == raw and len(raw) <= LABEL_VALUE_MAX and (not raw or (raw[0].isalnum() and raw[-1].isalnum())):
        return raw
    prefix = clean[: LABEL_VALUE_MAX - _HASH_LEN - 1].strip("-_.")
    return f"{prefix}-{_digest(raw)}" if prefix else _digest(raw)


def object_name(*parts: str) -> str:
    """A valid object name joining `parts` with "-": the plain join when it is valid, else a
    cleaned prefix plus a short hash of the parts."""
    joined = "-".join(parts)
    clean = _INVALID_NAME.sub("-", joined.lower())
    if clean == joined and len(joined) <= NAME_MAX and joined[:1].isalnum() and joined[-1:].isalnum():
        return joined
    prefix = clean[: NAME_MAX - _HASH_LEN - 1].strip("-.")
    return f"{prefix}-{_digest(joined)}" if prefix else _digest(joined)
