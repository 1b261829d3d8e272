"""Pure rules for a Workload's epoch history (`status.epochHistory`): one entry per placement
epoch — its clusters, why it started, when, and when and why it ended — the last
MAX_EPOCHS kept, oldest dropped. No I/O: table-tested in tests/unit/hub/test_epoch_history.py.

Cheap by construction: an entry is added when a placement commits a new epoch
(hub.controllers.placing) and closed when the epoch ends — failover or spot interruption
(status.fenced_status), eviction by a preemptor once its copies are withdrawn
(hub.controllers.queueing), its copies lost while admitted (back in its queue), or the
workload finishing (status.aggregated_status). Each of those writes the status anyway; an
unchanged epoch adds nothing, so a settled workload's status stays byte-for-byte the same.

Every function returns a new list and never changes its input: the controller's statuses
share their unchanged parts with the cached objects.
"""

from __future__ import annotations

from typing import Any

from fleetplane_types.names import PLACED_REASON

Obj = dict[str, Any]

MAX_EPOCHS = 10
"""Entries kept per workload (the newest): enough to see a flapping cluster or a workload
preempted over and over, small enough that every watcher of the Workload pays little."""

REQUEUED_REASON = "Requeued"
"""An admitted workload's copies were lost (not by failover or eviction): back in its queue."""

FIELD = "epochHistory"


def history(st: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The stored entries (only well-formed ones: a dict with an epoch)."""
    raw = (st or {}).get(FIELD)
    return [e for e in raw if isinstance(e, dict) and isinstance(e.get("epoch"), int)] if isinstance(raw, list) else []


def started(st: dict[str, Any], epoch: int, clusters: list[str], message: str, now: str) -> list[dict[str, Any]]:
    """The history once `epoch` starts on `clusters` (placement message `message`).

    Its reason is why the previous epoch ended when that ended in a re-placement (FailedOver,
    Evicted, PreemptedByPriority, ReclaimedByQueue, Requeued), with that cause as its message
    ("lost east (NotReady)"); else Placed with the placement message. A previous epoch still
    open (a path that did not close it) is closed as superseded."""
    old = history(st)
    prev = old[-1] if old else None
    reason, why = PLACED_REASON, message
    if prev is not None and prev.get("endReason") and prev.get("endReason") not in ("Succeeded", "Failed"):
        reason, why = str(prev["endReason"]), str(prev.get("endMessage") or message)
    out = [dict(e) for e in old if e.get("epoch") != epoch]
    if out and not out[-1].get("endedAt"):
        out[-1] = {**out[-1], "endedAt": now, "endReason": "Superseded", "endMessage": f"epoch {epoch} placed"}
    entry = {"epoch": epoch, "clusters": list(clusters), "reason": reason, "message": why, "startedAt": now}
    return [*out, entry][-MAX_EPOCHS:]


def ended(st: dict[str, Any], reason: str, message: str, now: str) -> list[dict[str, Any]] | None:
    """The history once the current epoch (status.placement.epoch) ends for `reason`; None when
    there is nothing to change: no epoch, or its entry is already closed.

    A workload placed before the history existed has no entry for its epoch: one is made from
    its placement record (clusters, decidedAt) so the end is not lost."""
    raw = st.get("placement")
    placement: dict[str, Any] = raw if isinstance(raw, dict) else {}
    epoch = placement.get("epoch")
    if not isinstance(epoch, int):
        return None
    old = history(st)
    i = next((i for i in range(len(old) - 1, -1, -1) if old[i].get("epoch") == epoch), None)
    if i is not None and old[i].get("endedAt"):
        return None
    if i is None:
        names = [str(c.get("name")) for c in placement.get("clusters") or [] if isinstance(c, dict)]
        entry: dict[str, Any] = {
            "epoch": epoch,
            "clusters": names,
            "reason": PLACED_REASON,
            "message": str(st.get("message") or ""),
            "startedAt": str(placement.get("decidedAt") or now),
        }
        old = [*old, entry][-MAX_EPOCHS:]
        i = len(old) - 1
    out = list(old)
    out[i] = {**out[i], "endedAt": now, "endReason": reason, "endMessage": message}
    return out


def with_end(st: dict[str, Any], reason: str, message: str, now: str) -> dict[str, Any]:
    """`st` (a new status the caller owns) with its current epoch ended, in place."""
    new = ended(st, reason, message, now)
    if new is not None:
        st[FIELD] = new
    return st
