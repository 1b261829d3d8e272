"""Fleetplane's own version, for `fleetplane --version` and the hub's /version: the installed
distribution's metadata, from pyproject.toml, the one source of truth (docs/release.md)."""

from __future__ import annotations

import importlib.metadata


def fleetplane_version() -> str:
    """This installation's version, or "unknown" for a source tree on sys.path never installed."""
    try:
        return importlib.metadata.version("fleetplane")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
