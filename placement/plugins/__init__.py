"""Filter and score plugins, one per module, behind :class:`placement.plugins.base.Plugin`.

``DEFAULT_PLUGINS`` is the order filters run in: cheap cluster-level filters first, then the
pool-level ones, gpu-fit last because its reason ("no node with 8 free H100") is only useful
once model and capacity type already match.
"""

from __future__ import annotations

from placement.plugins.base import BasePlugin, ExplainView, Options, Plugin, Query, Stage
from placement.plugins.capacity_type import CapacityTypePlugin
from placement.plugins.cost import Cost
from placement.plugins.gpu_fit import GpuFit
from placement.plugins.gpu_model import GpuModel
from placement.plugins.health import Health
from placement.plugins.locality import Locality
from placement.plugins.packing import Packing
from placement.plugins.pool_taints import PoolTaints
from placement.plugins.selector import Selector
from placement.plugins.spot_risk import SpotRisk
from placement.plugins.spreading import Spreading
from placement.plugins.taints import Taints


def default_plugins() -> list[Plugin]:
    return [
        Health(),
        Taints(),
        Selector(),
        GpuModel(),
        CapacityTypePlugin(),
        PoolTaints(),
        GpuFit(),
        Cost(),
        SpotRisk(),
        Locality(),
        Packing(),
        Spreading(),
    ]


__all__ = [
    "BasePlugin",
    "ExplainView",
    "Options",
    "Plugin",
    "Query",
    "Stage",
    "default_plugins",
]
