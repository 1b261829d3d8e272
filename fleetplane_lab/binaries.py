"""Where the lab finds its Kubernetes binaries, and the one error that says how to get them.

The binaries are built from Go modules by deploy/local/build-k8s.sh into a cache outside the
repository, keyed by version (see docs/lab.md). The versions here must match that script's
defaults; FLEETPLANE_K8S_BIN overrides the whole path.
"""

from __future__ import annotations

import os
from pathlib import Path

K8S_VERSION = "1.32.4"  # matches the installed kubectl 1.32
ETCD_VERSION = "3.5.21"
KWOK_VERSION = "0.7.0"

REQUIRED = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kwok")


class BinariesMissing(RuntimeError):
    """The control-plane binaries are not built. Not retryable: run `make k8s-binaries`."""


def k8s_bin_dir() -> Path:
    """The directory holding kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok.

    FLEETPLANE_K8S_BIN wins; otherwise the build script's default, under FLEETPLANE_CACHE
    (default ~/.cache/fleetplane).
    """
    explicit = os.environ.get("FLEETPLANE_K8S_BIN")
    if explicit:
        return Path(explicit).expanduser()
    cache = Path(os.environ.get("FLEETPLANE_CACHE", "~/.cache/fleetplane")).expanduser()
    return cache / f"k8s-v{K8S_VERSION}-etcd-v{ETCD_VERSION}-kwok-v{KWOK_VERSION}" / "bin"


def require_binaries(bin_dir: Path | None = None) -> Path:
    """Return the binaries directory, or raise BinariesMissing naming what is absent."""
    d = bin_dir or k8s_bin_dir()
    missing = [b for b in REQUIRED if not os.access(d / b, os.X_OK)]
    if missing:
        raise BinariesMissing(
            f"missing Kubernetes binaries in {d}: {', '.join(missing)}. "
            "Run `make k8s-binaries` (builds them from Go modules, ~6 min cold on 2 cores) "
            "or point FLEETPLANE_K8S_BIN at a directory that has them."
        )
    return d
