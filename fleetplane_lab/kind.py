"""The kind backend (Docker hosts): the lab's spokes as kind clusters, via deploy/kind/lab-kind.sh.

The script does the work so it can also be run by hand; this module passes it the spoke
specs (so kind spokes get exactly the profiles and regions the local ones would) and reads
back the kubeconfigs. The machines Fleetplane's CI runs on have no Docker engine, so this
path is kept correct by review, not by tests here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from fleetplane_lab.spoke import LabStartError, SpokeInfo, SpokeSpec

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kind" / "lab-kind.sh"
PREFIX = "fleetplane"


def _run(args: list[str], progress: Callable[[str], None], log: Path) -> None:
    if not SCRIPT.exists():
        raise LabStartError("kind", f"{SCRIPT} not found: the kind backend needs a source checkout")
    log.parent.mkdir(parents=True, exist_ok=True)
    progress(f"running {SCRIPT.name} {' '.join(args)} (log: {log})")
    with open(log, "ab") as out:
        rc = subprocess.run(["bash", str(SCRIPT), *args], stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise LabStartError("kind", f"{SCRIPT.name} exited with {rc}", str(log))


def up(root: Path, specs: list[SpokeSpec], with_hub: bool, progress: Callable[[str], None]) -> dict[str, SpokeInfo]:
    args = ["up", "--dir", str(root), "--prefix", PREFIX]
    if not with_hub:
        args.append("--no-hub")
    for s in specs:
        if s.extra_args:
            raise LabStartError("kind", f"spoke {s.name}: extra_args apply to the local backend only")
        region = s.region or "us-east-1"
        args += ["--spoke", f"{s.name}:{region}:{','.join(s.profiles)}"]
    _run(args, progress, root / "kind.log")
    spokes = {}
    for s in specs:
        kc = root / "kubeconfigs" / f"{s.name}.kubeconfig"
        doc = yaml.safe_load(kc.read_text())
        server = doc["clusters"][0]["cluster"]["server"]
        spokes[s.name] = SpokeInfo(
            name=s.name, dir=str(root), server=server, kubeconfig=str(kc), profiles=list(s.profiles), region=s.region
        )
    return spokes


def down(root: Path) -> None:
    _run(["down", "--dir", str(root), "--prefix", PREFIX], lambda m: None, root / "kind.log")
