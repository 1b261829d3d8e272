"""`lab up` / `lab down` own their processes: everything started is recorded, stopped by
PID, and its ports are freed; failures name the component and show its log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from fleetplane_lab import BinariesMissing, Lab, LabStartError, SpokeSpec
from fleetplane_lab.fixtures import require_lab_binaries
from fleetplane_lab.process import ProcRecord, port_in_use

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def lab_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the lab CLI as a user would, in a separate process (so state must go via the run dir)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "fleetplane_lab", *args], capture_output=True, text=True, timeout=300, env=env, cwd=REPO
    )


def processes_mentioning(path: Path) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(path) in a for a in p.info["cmdline"] or []):
                out.append(p)
        except psutil.Error:
            pass
    return out


def test_lab_down_after_up_leaves_no_process_it_started(tmp_path: Path) -> None:
    require_lab_binaries()
    run = tmp_path / "lab"
    up = lab_cli("up", "--spokes", "1", "--no-hub", "--dir", str(run))
    assert up.returncode == 0, up.stderr + up.stdout
    assert f"kubeconfig spoke-1: {run}/kubeconfigs/spoke-1.kubeconfig" in up.stdout

    state = json.loads((run / "lab.json").read_text())
    records = [ProcRecord.from_dict(r) for r in state["records"]]
    assert {r.name for r in records} == {
        f"spoke-1/{c}" for c in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
    }
    assert all(r.alive() for r in records)
    ports = [p for r in records for p in r.ports]
    assert all(port_in_use(p) for p in ports)

    status = lab_cli("status", "--dir", str(run), "--json")
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert st["spokes"]["spoke-1"]["ready"] is True
    assert all(c["alive"] for c in st["components"])

    again = lab_cli("up", "--spokes", "1", "--no-hub", "--dir", str(run))
    assert again.returncode == 1 and "already running" in again.stderr

    down = lab_cli("down", "--dir", str(run))
    assert down.returncode == 0, down.stderr + down.stdout

    for r in records:
        # Gone, or the PID now belongs to an unrelated, newer process.
        assert not psutil.pid_exists(r.pid) or abs(psutil.Process(r.pid).create_time() - r.create_time) > 1, r.name
    assert not [p for p in ports if port_in_use(p)]
    assert processes_mentioning(run) == []
    assert "no lab running" in lab_cli("status", "--dir", str(run)).stdout


def test_a_component_that_fails_to_start_is_named_with_its_log_tail_and_nothing_is_left(tmp_path: Path) -> None:
    require_lab_binaries()
    run = tmp_path / "lab"
    lab = Lab(
        run,
        spokes=[SpokeSpec("spoke-x", profiles=["l4-ondemand"], extra_args={"kube-apiserver": ["--no-such-flag=1"]})],
        with_hub=False,
    )
    with pytest.raises(LabStartError) as err:
        lab.up()
    assert err.value.component == "spoke-x/kube-apiserver"
    assert "unknown flag: --no-such-flag" in str(err.value)  # from the log tail, not our own text
    assert processes_mentioning(run) == []  # etcd started before the apiserver and was stopped
    assert not (run / "lab.json").exists()


def test_missing_binaries_fail_with_a_hint_to_run_make_k8s_binaries(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab", spokes=[SpokeSpec("spoke-1")], with_hub=False, bin_dir=tmp_path / "empty")
    with pytest.raises(BinariesMissing, match="make k8s-binaries"):
        lab.up()


def test_lab_down_stops_a_database_left_on_the_hub_data_dir_but_not_a_reader_of_its_log(tmp_path: Path) -> None:
    """A Postgres that daemonized out of the hub's process group must still go; a user's
    `tail -f` of the hub log (it only mentions the path) must not."""
    run = tmp_path / "lab"
    (run / "hub" / "pg").mkdir(parents=True)
    sleeper = "import time; time.sleep(120)"
    db = subprocess.Popen([sys.executable, "-c", sleeper, "-D", str(run / "hub" / "pg")], start_new_session=True)
    reader = subprocess.Popen([sys.executable, "-c", sleeper, str(run / "hub" / "hub.log")], start_new_session=True)
    try:
        Lab.attach(run).down()
        assert db.wait(timeout=15) is not None
        assert reader.poll() is None
    finally:
        for p in (db, reader):
            p.kill()
            p.wait()
