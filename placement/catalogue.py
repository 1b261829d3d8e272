"""The built-in GPU catalogue: model names the engine knows even when no cluster reports them.

A workload may ask for a model no cluster has today (it then stays pending with a clear
reason), but a model that is neither in the fleet nor here is almost always a typo, so
converters reject it. Memory is GiB per GPU; for models sold in two sizes the smaller one is
listed, so an unlabelled "A100" never passes a memory filter it might not meet.
"""

from __future__ import annotations

import re

#: GiB of memory per GPU, by canonical model name.
GPU_CATALOGUE: dict[str, int] = {
    "B200": 192,
    "MI300X": 192,
    "H200": 141,
    "H100": 80,
    "A100-80GB": 80,
    "A100": 40,
    "A100-40GB": 40,
    "L40S": 48,
    "V100": 32,
    "L4": 24,
    "A10G": 24,
    "T4": 16,
}

_SIZE_SUFFIX = re.compile(r"^(?P<base>.+?)[-_ ]?(?P<gib>\d+)\s*G(I)?B$", re.IGNORECASE)


def canonical_model(name: str) -> str:
    """Model names compare case-insensitively ("h100" and "H100" are the same GPU)."""
    return name.strip().upper()


def catalogue_memory(model: str) -> int | None:
    """Memory per GPU for a model, from the catalogue or a size suffix ("A100-80GB" → 80)."""
    key = canonical_model(model)
    if key in GPU_CATALOGUE:
        return GPU_CATALOGUE[key]
    match = _SIZE_SUFFIX.match(key)
    if match:
        return int(match.group("gib"))
    return None


def known_models(fleet_models: set[str] | frozenset[str] = frozenset()) -> frozenset[str]:
    """Canonical names a workload may ask for: the catalogue plus whatever the fleet reports."""
    return frozenset(GPU_CATALOGUE) | frozenset(canonical_model(m) for m in fleet_models)
