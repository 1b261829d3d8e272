"""Agent tests: make `spoke_agent` (spoke-agent/) and `fleetplane_types` importable without an install."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT, ROOT / "spoke-agent"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
