"""flavor-region: the cluster filter that keeps a workload admitted on a regional flavor in
that region. The admission adds it to its engine's plugins and sets :attr:`region` before
each placement; a decision remembers the region it was made for, so its explanation (built
lazily, later) still names the right one."""

from __future__ import annotations

from weakref import WeakKeyDictionary

import numpy as np

from placement.fleet import BoolArray, FleetState
from placement.plugins.base import BasePlugin, ExplainView, Query, Stage


class FlavorRegion(BasePlugin):
    name = "flavor-region"
    stage: Stage | None = "cluster"

    def __init__(self) -> None:
        self.region: str | None = None
        self._wanted: WeakKeyDictionary[Query, str] = WeakKeyDictionary()

    def filter(self, q: Query, state: FleetState) -> BoolArray | None:
        if self.region is None:
            return None
        self._wanted[q] = self.region
        a = state.arrays
        key = ("flavor-region", self.region)
        mask = a.cache.get(key)
        if mask is None:
            mask = np.array([c.region == self.region for c in a.snapshot.clusters], dtype=np.bool_)
            a.cache[key] = mask
        return mask  # type: ignore[return-value]

    def why(self, q: Query, view: ExplainView, index: int) -> tuple[str, str]:
        wanted = self._wanted.get(q, "?")
        have = view.arrays.snapshot.clusters[index].region or "no region"
        return (f"not in {wanted}", f"cluster is in {have}; the admitted flavor is in {wanted}")
