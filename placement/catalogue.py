"""The built-in GPU catalogue, as the engine uses it.

A workload may ask for a model no cluster has today (it then stays pending with a clear
reason), but a model that is neither in the fleet nor in the catalogue is almost always a typo,
so converters reject it. The names and their one normalisation live in the bottom package
(`fleetplane_types.gpus`), shared with the agent and the hub's validation.
"""

from __future__ import annotations

from fleetplane_types.gpus import (
    GPU_CATALOGUE,
    canonical_model,
    catalogue_memory,
    known_models,
    model_memory,
    split_model,
)

__all__ = ["GPU_CATALOGUE", "canonical_model", "catalogue_memory", "known_models", "model_memory", "split_model"]
