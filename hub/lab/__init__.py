"""The multi-cluster lab: real spoke control planes with fake GPU nodes on one machine.

Public API (used by `fleetplane lab` and by pytest fixtures):

    from hub.lab import Lab, SpokeSpec, default_spokes, k8s_bin_dir
    with Lab(tmp_path, spokes=default_spokes(2), with_hub=False) as lab:
        lab.spokes["spoke-1"].kubeconfig / .server / .token

See docs/lab.md.
"""

from hub.lab.binaries import BinariesMissing, k8s_bin_dir, require_binaries
from hub.lab.lab import DEFAULT_DIR, DownReport, HubInfo, Lab, LabError, LabStatus, default_spokes
from hub.lab.profiles import available_profiles, load_profile, render_nodes
from hub.lab.spoke import LabStartError, SpokeInfo, SpokeSpec
from hub.lab.cli import lab_app  # noqa: E402  (after the modules it uses; hub.cli registers it)

__all__ = [
    "DEFAULT_DIR", "BinariesMissing", "DownReport", "HubInfo", "Lab", "LabError", "LabStartError", "LabStatus",
    "SpokeInfo", "SpokeSpec", "available_profiles", "default_spokes", "k8s_bin_dir", "load_profile",
    "lab_app", "render_nodes", "require_binaries",
]
