"""health: removes clusters that are not Ready (their agent is silent or reports a problem)."""

from __future__ import annotations

from placement.fleet import BoolArray, FleetState
from placement.plugins.base import BasePlugin, ExplainView, Query, Stage


class Health(BasePlugin):
    name = "health"
    stage: Stage | None = "cluster"

    def filter(self, q: Query, state: FleetState) -> BoolArray | None:
        return state.arrays.ready

    def why(self, q: Query, view: ExplainView, index: int) -> tuple[str, str]:
        reason = view.arrays.snapshot.clusters[index].not_ready_reason
        return ("NotReady", f"cluster is NotReady ({reason})" if reason else "cluster is NotReady")
