"""The multi-process hub: `fleetplane up --workers N` runs N API workers on one port and a
controller process, restarts a worker that dies, and leaves nothing behind when it is killed.
`fleetplane controller` runs the controllers alone, next to API-only hubs."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_federation import API, pool, report
from tests.conftest import start_hub
from tests.hubtest import FLEETPLANE, REPO, HubProcess, free_port, wait_until, workload

WORKERS = 2


@pytest.fixture
def hub(tmp_path: Path, fresh_database: Callable[[], str]) -> Iterator[HubProcess]:
    h = start_hub(tmp_path, fresh_database(), WORKERS)
    yield h
    h.stop()


def _is_controller(cmd: str) -> bool:
    return cmd.endswith("fleetplane controller")


def test_a_multi_worker_hub_runs_its_api_workers_and_one_controller_in_its_process_group(hub: HubProcess) -> None:
    assert hub.proc is not None
    procs = hub.processes()
    assert len(hub.worker_pids()) == WORKERS, procs
    assert sum(_is_controller(c) for c in procs.values()) == 1, procs
    assert len(procs) == WORKERS + 2, "the parent, its workers and the controller, nothing else"
    with hub.client() as c:
        r = c.get("/readyz", params={"verbose": ""})
    assert r.status_code == 200 and "controller off in this process (api role)" in r.text


def test_the_supervising_parent_keeps_its_pid_and_sheds_the_hubs_libraries(hub: HubProcess) -> None:
    """After setting up, `fleetplane up` exec()s the lean supervisor (hub.supervisor) in its own
    process: the pid the caller started is still the workers' parent, `ps` still shows the
    command it was given, and none of what only the serving processes need (the web framework,
    pydantic, numpy for placement, SQLAlchemy) stays mapped in it — about 110 MiB of RSS before."""
    assert hub.proc is not None
    parent = hub.proc.pid
    cmdline = Path(f"/proc/{parent}/cmdline").read_bytes().split(b"\0")
    assert b"hub.supervisor" in cmdline and b"up" in cmdline, cmdline
    for pid in hub.worker_pids():
        assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == parent
    maps = Path(f"/proc/{parent}/maps").read_text()
    heavy = [lib for lib in ("pydantic_core", "_multiarray_umath", "sqlalchemy", "uvloop", "orjson") if lib in maps]
    assert not heavy, f"the supervisor still maps {heavy}"
    with hub.client() as c:  # and the hub it supervises serves
        assert c.get("/readyz").status_code == 200


def test_killing_an_api_worker_gets_it_restarted_while_the_api_keeps_answering(hub: HubProcess) -> None:
    with hub.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": "survive"}}).status_code == 201
    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def keep_asking() -> None:
        nonlocal answered
        while not stop.is_set():
            # A new connection each time: the kernel hands it to any worker still accepting.
            with httpx.Client(base_url=hub.http_url, headers={"Authorization": f"Bearer {hub.admin_token}"}) as c:
                try:
                    r = c.get("/api/v1/namespaces/survive", timeout=10)
                    if r.status_code == 200:
                        answered += 1
                    else:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
            time.sleep(0.02)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        victim = hub.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: victim not in hub.worker_pids() and len(hub.worker_pids()) == WORKERS,
            timeout=60,
            what="the parent started a new worker in place of the killed one",
        )
        before = answered
        wait_until(lambda: answered > before + 20, timeout=30, what="answers after the restart")
    finally:
        stop.set()
        asker.join(20)
    # A request that was in flight on the killed worker's connection may fail with it; every
    # request on a new connection is accepted by a live worker (the listening socket is the
    # parent's, so nothing is refused while the worker restarts).
    assert len(failures) <= 1, failures
    assert "exited with code -9" in hub.log_tail(200), "the parent says which worker died"


def test_sigkill_of_the_parent_leaves_no_process_of_the_hub_running(hub: HubProcess) -> None:
    children = {pid for pid in hub.processes() if hub.proc is not None and pid != hub.proc.pid}
    assert len(children) == WORKERS + 1
    hub.kill_parent()
    wait_until(lambda: not hub.processes(), timeout=20, what="every worker and the controller exited")
    with pytest.raises(httpx.HTTPError):
        httpx.get(hub.http_url + "/readyz", timeout=2)


def test_the_demo_fleet_runs_once_with_several_workers(tmp_path: Path, fresh_database: Callable[[], str]) -> None:
    h = HubProcess(tmp_path, fresh_database(), free_port(), free_port(), extra_args=["--demo"], workers=WORKERS).start()
    try:
        with h.client() as c:
            wait_until(
                lambda: len(c.get(f"{API}/clusters").json()["items"]) >= 3, timeout=90, what="the demo's clusters"
            )
            time.sleep(3)  # a second copy of the demo would have joined its clusters by now
            names = sorted(i["metadata"]["name"] for i in c.get(f"{API}/clusters").json()["items"])
        assert len(names) == 3, f"one demo fleet of 3 SIMULATED clusters, not one per worker: {names}"
    finally:
        h.stop()


def test_the_controller_command_places_workloads_for_api_only_hubs(
    tmp_path: Path, fresh_database: Callable[[], str]
) -> None:
    url = fresh_database()
    api = start_hub(tmp_path / "api", url, 1, FLEETPLANE_CONTROLLERS="false")
    health = free_port()
    log = open(tmp_path / "controller.log", "wb")  # noqa: SIM115
    env = dict(os.environ, FLEETPLANE_DATABASE_URL=url, PYTHONWARNINGS="ignore")
    controller = subprocess.Popen(
        [*FLEETPLANE, "controller", "--data-dir", str(tmp_path / "ctl"), "--health-port", str(health)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        readyz = f"http://127.0.0.1:{health}/readyz"

        def leading() -> bool:
            try:
                r = httpx.get(readyz, params={"verbose": ""}, timeout=2)
            except httpx.HTTPError:
                return False
            return r.status_code == 200 and "[+]controller leader" in r.text

        wait_until(leading, timeout=90, what="the controller process leads")
        admin = {"Authorization": f"Bearer {api.admin_token}"}
        r = httpx.get(f"http://127.0.0.1:{health}/api/v1/namespaces", headers=admin, timeout=5)
        assert r.status_code == 404 and r.json()["kind"] == "Status", "the health port serves no API"
        with api.client() as c:
            c.post("/api/v1/namespaces", json={"metadata": {"name": "solo"}})
            report(c, "solo-1", "us-east-1", [pool("L4", "on-demand", 0.8, 2, 4, mem=24)])
            assert c.post(f"{API}/namespaces/solo/workloads", json=workload("w", "solo")).status_code == 201
            wait_until(
                lambda: c.get(f"{API}/namespaces/solo/workloads/w").json().get("status", {}).get("phase") == "Placed",
                timeout=60,
                what="placed by the controller process",
            )
        controller.send_signal(signal.SIGTERM)
        assert controller.wait(20) == 0
        out = (tmp_path / "controller.log").read_text(errors="replace")
        assert "Traceback" not in out, out
    finally:
        if controller.poll() is None:
            controller.kill()
        log.close()
        api.stop()
