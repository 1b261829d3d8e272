"""`--metrics-port` of a real agent process (`python -m spoke_agent`): a port it cannot listen on
is a clear startup error naming the option (exit 2, no traceback), and by default it listens on
loopback only (/metrics has no token). No hub needed: the port is bound before the agent joins."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from fleetplane_testing.ports import free_port
from fleetplane_testing.processes import stop_process
from fleetplane_testing.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'spoke-agent'}"}
PROFILE = {"pools": [{"name": "a100", "model": "A100", "capacityType": "on-demand", "nodes": 1, "gpusPerNode": 4}]}


def agent_args(tmp_path: Path, *extra: str) -> list[str]:
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    return [
        *(sys.executable, "-m", "spoke_agent", "--hub", "https://127.0.0.1:1", "--cluster-name", "c1"),
        *("--join-token", "t", "--backend", "simulated", "--profile", str(profile)),
        *extra,
    ]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_taken_metrics_port_is_a_clear_startup_error(tmp_path: Path, taken_port: int) -> None:
    r = subprocess.run(
        agent_args(tmp_path, "--metrics-port", str(taken_port)),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ENV},
        cwd=ROOT,
    )
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert f"--metrics-port {taken_port}" in r.stderr and "127.0.0.1" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr, r.stderr[-2000:]


def test_the_metrics_port_listens_on_loopback_by_default(tmp_path: Path) -> None:
    port = free_port()
    log = open(tmp_path / "agent.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        agent_args(tmp_path, "--metrics-port", str(port)), stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, **ENV}, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    try:
        # It serves while it keeps retrying the join (the hub address refuses connections).
        wait_until(
            "the agent serves /metrics on loopback",
            lambda: httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200,
            30,
            0.2,
            retry_on=(httpx.HTTPError,),
        )
        bound = _listening(port)  # what the kernel says it listens on
        assert bound and all(addr.startswith("127.0.0.1:") for addr in bound), bound
    finally:
        stop_process(proc)
        log.close()


def _listening(port: int) -> list[str]:
    """The local addresses of TCP sockets listening on `port`, from /proc/net/tcp{,6}."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr_hex, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                if len(addr_hex) == 8:
                    addr = socket.inet_ntoa(bytes.fromhex(addr_hex)[::-1])
                else:
                    addr = addr_hex
                found.append(f"{addr}:{port}")
    return found
