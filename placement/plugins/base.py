"""The one small protocol every filter and score plugin implements, and what it is given.

A plugin may filter (remove clusters or pools, at one ``stage``), score (a raw score in
``[0, MAX_SCORE]`` per candidate option), or both. Both run vectorised over the whole fleet:
``filter`` returns a boolean per cluster (stage "cluster") or per pool (stage "pool");
``score`` returns a float per candidate option. Explanations are produced lazily by ``why``
and ``detail`` from what the decision recorded, so the hot path builds no strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from placement.fleet import BoolArray, FleetArrays, FleetState, FloatArray, IntArray
from placement.model import WorkloadRequest
from placement.profiles import Profile

Stage = Literal["cluster", "pool"]


@dataclass(eq=False)
class Query:
    """A workload compiled against one fleet: what every plugin needs, computed once."""

    workload: WorkloadRequest
    profile: Profile
    k: int  # GPUs per replica, all on one node
    need: int  # replicas one cluster must be able to host to pass fit: all (Gang) or 1 (Divisible)
    model_ids: IntArray | None  # allowed model ids; None = any model
    preferred_model_ids: IntArray
    allowed_caps: IntArray
    preferred_caps: IntArray

    @property
    def gpu_less(self) -> bool:
        return self.k == 0


@dataclass(eq=False)
class Options:
    """Candidate (cluster, pool) pairs that passed every filter; scores are per option.

    ``pool`` is -1 for a workload that needs no GPUs (the option is the whole cluster).
    ``replicas`` is how many replicas the option would take: all of a gang, or as many of a
    divisible workload as the pool can host.
    """

    cluster: IntArray
    pool: IntArray
    replicas: IntArray

    def __len__(self) -> int:
        return int(self.cluster.shape[0])


@dataclass(eq=False)
class ExplainView:
    """What a decision kept for its explanation: the static fleet plus copies of the
    capacity numbers the fit filter saw (the live state moves on as the batch proceeds)."""

    arrays: FleetArrays
    fit_pools: IntArray  # pools that reached the fit filter
    fit_capacity: IntArray  # their k-GPU replica capacity at decision time
    fit_free: IntArray  # their free GPUs at decision time
    options: Options

    def fit_capacity_of(self, pool: int) -> tuple[int, int]:
        i = int(np.searchsorted(self.fit_pools, pool))
        if i < len(self.fit_pools) and self.fit_pools[i] == pool:
            return int(self.fit_capacity[i]), int(self.fit_free[i])
        return 0, 0


class Plugin(Protocol):
    """A filter and/or score plugin. ``stage`` is None for score-only plugins."""

    name: str
    stage: Stage | None

    def filter(self, q: Query, state: FleetState) -> BoolArray | None:
        """True where the cluster/pool may host the workload; None if this plugin never filters."""
        ...

    def why(self, q: Query, view: ExplainView, index: int) -> tuple[str, str]:
        """For a cluster/pool this plugin removed: (short reason for summaries, full detail)."""
        ...

    def score(self, q: Query, state: FleetState, options: Options) -> FloatArray | None:
        """Raw score in [0, MAX_SCORE] per option; None if this plugin never scores."""
        ...

    def detail(self, q: Query, view: ExplainView, option: int) -> str:
        """One line saying what the raw score of one option is made of."""
        ...


class BasePlugin:
    """Defaults for the optional half of the protocol (a filter need not score, and vice versa)."""

    name: str = ""
    stage: Stage | None = None

    def filter(self, q: Query, state: FleetState) -> BoolArray | None:
        return None

    def why(self, q: Query, view: ExplainView, index: int) -> tuple[str, str]:
        return (self.name, self.name)

    def score(self, q: Query, state: FleetState, options: Options) -> FloatArray | None:
        return None

    def detail(self, q: Query, view: ExplainView, option: int) -> str:
        return ""


def lookup(size: int, ids: IntArray) -> BoolArray:
    """A boolean table over small integer codes: ``lookup(n, ids)[codes]`` is a fast isin."""
    table = np.zeros(size, dtype=np.bool_)
    table[ids] = True
    return table
