"""The multi-cluster lab: real spoke control planes with fake GPU nodes on one machine.

Public API (used by `fleetplane lab` and by pytest fixtures):

    from fleetplane_lab import Lab, SpokeSpec, default_spokes, k8s_bin_dir
    with Lab(tmp_path, spokes=default_spokes(2), with_hub=False) as lab:
        lab.spokes["spoke-1"].kubeconfig / .server / .token

See docs/lab.md.
"""

from fleetplane_lab.binaries import BinariesMissing, k8s_bin_dir, require_binaries
from fleetplane_lab.cli import lab_app
from fleetplane_lab.lab import DEFAULT_DIR, DownReport, HubInfo, Lab, LabError, LabStatus, default_spokes
from fleetplane_lab.profiles import available_profiles, load_profile, render_nodes
from fleetplane_lab.spoke import LabStartError, SpokeInfo, SpokeSpec

__all__ = [
    "DEFAULT_DIR",
    "BinariesMissing",
    "DownReport",
    "HubInfo",
    "Lab",
    "LabError",
    "LabStartError",
    "LabStatus",
    "SpokeInfo",
    "SpokeSpec",
    "available_profiles",
    "default_spokes",
    "k8s_bin_dir",
    "lab_app",
    "load_profile",
    "render_nodes",
    "require_binaries",
]
