"""GPU model names: ONE normalisation, used by the agent (what it reports), the placement
engine (what it matches) and the hub's validation (what a workload may ask for).

A model name is a family plus, optionally, a memory size: "A100-80GB", "a100_80gb" and
"A100" with `memoryGiB: 80` all mean the same GPU — family "A100" with 80 GiB per GPU. So:

- `canonical_model(name)` is the family, upper-case, without a size suffix ("A100-80GB" →
  "A100"); pools and requests are matched by family.
- `model_memory(name)` is the size a suffix states ("A100-80GB" → 80), or None.
- A request for "A100-80GB" means family A100 with at least 80 GiB per GPU.
- `catalogue_memory(name)` is the suffix size, else the catalogue's (the smaller size for
  families sold in two, so an unlabelled "A100" never passes a memory filter it might fail).
"""

from __future__ import annotations

import re

GPU_CATALOGUE: dict[str, int] = {
    "B200": 192,
    "MI300X": 192,
    "H200": 141,
    "H100": 80,
    "A100": 40,
    "L40S": 48,
    "V100": 32,
    "L4": 24,
    "A10G": 24,
    "T4": 16,
}
"""GiB of memory per GPU, by model family (the smaller size where a family has two)."""

_SIZE_SUFFIX = re.compile(r"^(?P<base>.+?)[-_ ]?(?P<gib>\d+)\s*G(I)?B$", re.IGNORECASE)


def split_model(name: str) -> tuple[str, int | None]:
    """(family, suffix memory in GiB or None): "A100-80GB" → ("A100", 80), "h100" → ("H100", None)."""
    key = name.strip().upper()
    match = _SIZE_SUFFIX.match(key)
    base = match.group("base").strip("-_ ") if match else ""
    if match and re.search("[A-Z]", base):  # a family name before the size ("80GB" alone is not one)
        return base, int(match.group("gib"))
    return key, None


def canonical_model(name: str) -> str:
    """The model family: case-insensitive, size suffix dropped ("a100-80gb" → "A100")."""
    return split_model(name)[0]


def model_memory(name: str) -> int | None:
    """The memory a model name states in its suffix ("A100-80GB" → 80), else None."""
    return split_model(name)[1]


def catalogue_memory(name: str) -> int | None:
    """Memory per GPU for a model name: its suffix, else the catalogue's, else None."""
    family, suffix = split_model(name)
    return suffix if suffix is not None else GPU_CATALOGUE.get(family)


def known_models(fleet_models: set[str] | frozenset[str] = frozenset()) -> frozenset[str]:
    """Families a workload may ask for: the catalogue plus whatever the fleet reports."""
    return frozenset(GPU_CATALOGUE) | frozenset(canonical_model(m) for m in fleet_models)


GPU_RESOURCES: frozenset[str] = frozenset({"nvidia.com/gpu", "amd.com/gpu", "gpu.intel.com/i915", "habana.ai/gaudi"})
"""Extended resources that are GPUs. Kubernetes' ExtendedResourceToleration admission plugin
(on in GKE, AKS and the lab) gives a pod that requests one a toleration {key: <resource>,
operator: Exists, effect: NoSchedule}, so GPU nodes tainted `nvidia.com/gpu:NoSchedule` take
GPU pods and nothing else: placement treats such taints as tolerated by GPU work."""
