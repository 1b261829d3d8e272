"""Label and annotation keys the agent puts on what it applies, and how values are built.

Every applied object carries the Assignment it came from, the Workload and the fencing
epoch, so the agent can find (and garbage-collect) its objects after a restart with one
label-selected list per kind, and can remove stale-epoch copies.
"""

from __future__ import annotations

import hashlib
import re

from fleetplane_types.names import (
    AGENT_CLEANUP_FINALIZER as CLEANUP_FINALIZER,
)
from fleetplane_types.names import (
    ASSIGNMENT_ANNOTATION,
    ASSIGNMENT_LABEL,
    BACKEND_LABEL,
    EPOCH_LABEL,
    WORKLOAD_LABEL,
)

__all__ = [
    "ASSIGNMENT_ANNOTATION", "ASSIGNMENT_LABEL", "BACKEND_LABEL", "CLEANUP_FINALIZER", "EPOCH_LABEL", "WORKLOAD_LABEL",
    "assignment_key", "assignment_label", "label_value",
]

_LABEL_VALUE_MAX = 63
_INVALID = re.compile(r"[^A-Za-z0-9_.-]")


def label_value(raw: str) -> str:
    """A valid label value for `raw`: itself if it fits, else a prefix plus a short hash.

    Label values are at most 63 characters of [A-Za-z0-9_.-], starting and ending
    alphanumeric; "<namespace>.<name>" can be longer (a namespace and a name may be 63 and 253).
    """
    clean = _INVALID.sub("-", raw)
    if len(clean) <= _LABEL_VALUE_MAX and clean == raw:
        return clean
    digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
    prefix = clean[: _LABEL_VALUE_MAX - len(digest) - 1].rstrip("-_.")
    return f"{prefix}-{digest}"


def assignment_key(namespace: str, name: str) -> str:
    """The in-memory key of an Assignment: "<ns>/<name>"."""
    return f"{namespace}/{name}"


def assignment_label(namespace: str, name: str) -> str:
    """Value of fleetplane.io/assignment: "<ns>.<name>" (hashed if too long)."""
    return label_value(f"{namespace}.{name}")
