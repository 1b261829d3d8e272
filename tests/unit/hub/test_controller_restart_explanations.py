"""Which stored pending reasons the federation controller takes as the engine's current one
(hub.controllers.federation.shows_engine_reason, Explained.shown_by): after a restart these are
not rebuilt on the first passes; anything else is explained again at once. Pure logic."""

from __future__ import annotations

import copy
from typing import Any

from hub.controllers import status
from hub.controllers.federation import Explained, shows_engine_reason, stored_reason

Obj = dict[str, Any]
REASON = "0/2 clusters: 2 no H100"


def pending_workload(generation: int = 3) -> Obj:
    """A workload as `_set_pending` leaves it: the engine's reason and a not-placed explanation."""
    w: Obj = {"metadata": {"name": "big", "namespace": "team-a", "generation": generation}, "spec": {}}
    record = {"clusters": [], "reason": REASON, "explanation": {"placed": False, "reason": REASON}}
    new = status.pending_status(w, REASON, record, "2026-03-01T10:00:00Z")
    assert new is not None
    w["status"] = new
    return w


def test_a_pending_status_written_from_an_engine_decision_shows_the_engines_reason() -> None:
    w = pending_workload()
    assert shows_engine_reason(w)
    assert Explained(stored_reason(w), 3, 0.0, -1).shown_by(w)


def test_a_changed_spec_a_fenced_or_a_placed_workload_or_someone_elses_rewrite_is_explained_again() -> None:
    w = pending_workload()
    seen = Explained(REASON, 3, 0.0, 7)

    newer = copy.deepcopy(w)
    newer["metadata"]["generation"] = 4  # its spec changed since: the stored reason is for the old one
    assert not shows_engine_reason(newer) and not seen.shown_by(newer)

    fenced = copy.deepcopy(w)
    fenced["status"] = status.fenced_status(
        {"status": {"placement": {"epoch": 1, "explanation": {"placed": True}}}}, "east (NotReady)"
    )
    fenced["status"]["observedGeneration"] = 3
    assert not shows_engine_reason(fenced)  # its reason says why it lost its copies, not why it waits

    placed = copy.deepcopy(w)
    placed["status"]["placement"]["clusters"] = [{"name": "east"}]
    assert not shows_engine_reason(placed)

    rewritten = copy.deepcopy(w)
    rewritten["status"]["placement"]["reason"] = "0/2 clusters: edited by hand"
    assert shows_engine_reason(rewritten)  # it still looks like the engine's…
    assert not seen.shown_by(rewritten)  # …but not the one this controller wrote

    no_explanation = copy.deepcopy(w)
    del no_explanation["status"]["placement"]["explanation"]
    assert not shows_engine_reason(no_explanation)
