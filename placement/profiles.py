"""Named scoring profiles: plugin weights plus the few constants that turn money and time into scores.

Every score plugin returns a raw score in ``[0, MAX_SCORE]``; a cluster's total is
``Σ weight × raw``. Weight 0 disables a plugin (it is not even run). The constants are
absolute, not normalised over the candidates, so a score means the same thing whatever else
is in the fleet — that is what lets "a $0.20 cheaper cluster" lose to data gravity while a
"$3 cheaper" one wins. See docs/placement.md for the arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from placement.errors import PlacementInputError

#: Every raw plugin score lies in [0, MAX_SCORE].
MAX_SCORE = 100.0


@dataclass(frozen=True)
class Profile:
    """Weights by plugin name and the tunables of the score plugins."""

    name: str
    weights: Mapping[str, float] = field(default_factory=dict)
    price_ceiling_per_gpu_hour: float = 10.0
    """USD per GPU-hour that scores 0 on cost (and anything dearer). Above every list price of
    the catalogue's GPUs, so cost never saturates for real offers; each $1/GPU-hour cheaper
    is worth 10 raw cost points."""
    egress_budget_usd: float = 1000.0
    """Egress USD that, alone, takes the locality score from 100 to 0. $1,000 is moving about
    50 TB across regions at $0.02/GB — clearly worse than running anywhere closer."""
    transfer_budget_hours: float = 10.0
    """Hours of transfer that, alone, take the locality score from 100 to 0; about 45 TB over
    a 10 Gbit/s link. Time and money add: 5 h and $500 also score 0."""
    spot_interruption_rate: float = 0.05
    """Chance that one spot node is reclaimed during a run, per replica. A gang of r replicas
    survives with (1 - rate)^r, which is the spot-risk score (×100); 5% makes one spot
    replica cost 5 raw points and an 8-replica gang 34."""

    def weight(self, plugin: str) -> float:
        return float(self.weights.get(plugin, 0.0))

    def with_weights(self, **weights: float) -> Profile:
        """A copy with some weights changed (names use underscores for dashes)."""
        merged = dict(self.weights)
        merged.update({k.replace("_", "-"): v for k, v in weights.items()})
        return replace(self, weights=merged)


#: Default weights, and why (a weight × a raw-score gap is what a difference is worth):
#:
#: - cost 3: the main objective. $1/GPU-hour = 10 raw points = 30 weighted.
#: - locality 2: moving data costs money and delays the start; 1 TB across regions
#:   ($20 + 0.22 h at 10 Gbit/s ≈ 4.2 raw) is worth ≈ $0.28/GPU-hour; 10 TB ≈ $2.8/GPU-hour.
#: - spot-risk 2: one spot replica loses 5 raw = 10 weighted ≈ $0.33/GPU-hour; an 8-replica gang
#:   loses 34 raw = 67 weighted ≈ $2.2/GPU-hour, so spot must be much cheaper to win a gang.
#: - gpu-model 1, capacity-type 1: a stated preference is worth up to ≈ $3.3/GPU-hour.
#: - taints 1: an untolerated PreferNoSchedule taint costs 100 weighted.
#: - packing 0.5: packs among similar offers without overriding a real price gap: a 20%
#:   utilisation difference is 10 weighted ≈ $0.33/GPU-hour.
#: - spreading 0: the opposite of packing; the "spread" profile turns it on instead.
DEFAULT_WEIGHTS: dict[str, float] = {
    "taints": 1.0,
    "gpu-model": 1.0,
    "capacity-type": 1.0,
    "cost": 3.0,
    "spot-risk": 2.0,
    "locality": 2.0,
    "packing": 0.5,
    "spreading": 0.0,
}

PROFILES: dict[str, Profile] = {
    "default": Profile("default", DEFAULT_WEIGHTS),
    # Spread load over clusters (e.g. inference replicas): least-allocated first.
    "spread": Profile("spread", {**DEFAULT_WEIGHTS, "packing": 0.0, "spreading": 0.5}),
    # Cheapest GPUs, data be damned (batch work that brings its own data).
    "cheapest": Profile("cheapest", {**DEFAULT_WEIGHTS, "cost": 6.0, "locality": 0.5}),
    # Data gravity first (huge datasets, small jobs).
    "data-local": Profile("data-local", {**DEFAULT_WEIGHTS, "locality": 6.0}),
}


def get_profile(profile: Profile | str) -> Profile:
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise PlacementInputError(
            "Profile", profile, "", f"unknown profile (known: {', '.join(sorted(PROFILES))})"
        ) from None
