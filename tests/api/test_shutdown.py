"""Stopping the hub: SIGINT and SIGTERM end it cleanly (exit 0, no tracebacks) even with watches
open, and the embedded Postgres handle file does not keep the pids of killed hubs."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_hub
from tests.hubtest import HubProcess, free_port, wait_until

WORKLOADS = "/apis/fleetplane.io/v1alpha1/workloads"


def _hold_watch(hub: HubProcess, opened: threading.Event) -> None:
    try:
        with hub.client() as c, c.stream("GET", WORKLOADS, params={"watch": "true"}, timeout=None) as r:
            opened.set()
            for _ in r.iter_lines():
                pass
    except httpx.HTTPError:
        pass  # the hub went away: what this test does


@pytest.mark.parametrize("workers", [1, 2], ids=["1-worker", "2-workers"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stopping_the_hub_with_watches_open_exits_cleanly_without_tracebacks(
    sig: signal.Signals, workers: int, tmp_path: Path, fresh_database: Callable[[], str]
) -> None:
    hub = start_hub(tmp_path, fresh_database(), workers)
    watchers = []
    for _ in range(3):
        opened = threading.Event()
        t = threading.Thread(target=_hold_watch, args=(hub, opened))
        t.start()
        assert opened.wait(20), "a watch opened"
        watchers.append(t)
    assert hub.proc is not None
    hub.proc.send_signal(sig)
    assert hub.proc.wait(15) == 0, hub.log_tail()
    for t in watchers:
        t.join(10)
    assert not hub.processes(), "every process of the hub stopped with it"
    log = hub.log_path.read_text(errors="replace")
    for bad in ("Traceback", "CancelledError", "ERROR"):
        assert bad not in log, f"{bad} in the hub's output:\n{log}"


def test_a_killed_hubs_pid_is_pruned_from_the_embedded_postgres_handle_file(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    data.parent.chmod(0o755)  # the embedded Postgres runs as its own user and must reach its data
    handles = data / "postgres" / ".handle_pids.json"
    first = HubProcess(data, None, free_port(), free_port()).start(timeout=120)
    assert first.proc is not None
    killed = first.proc.pid
    assert killed in json.loads(handles.read_text())
    first.stop(kill=True)  # SIGKILL: no atexit, the pid stays in the file
    assert killed in json.loads(handles.read_text())

    second = HubProcess(data, None, free_port(), free_port()).start(timeout=120)
    try:
        assert second.proc is not None
        assert json.loads(handles.read_text()) == [second.proc.pid], "the dead pid was pruned on start"
    finally:
        second.stop()
    # The last live handle went away, so the embedded server was stopped too.
    wait_until(lambda: json.loads(handles.read_text()) == [], 15, "the handle file is empty")
    assert not (data / "postgres" / "postmaster.pid").exists(), "embedded Postgres was stopped with the last hub"
