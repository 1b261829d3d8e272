"""A restarted federation controller (kill -9 of the hub, issue 14's P8): it places first and
takes the pending reasons it finds stored as current, then refreshes them; a reason skipped
while capacity changes is still rewritten soon after (hub.controllers.federation,
EXPLAIN_EVERY_SECONDS).

Real hub processes on one real Postgres database; cluster status is written through the API
the way an agent writes it (tests/api/test_federation.py's helpers).
"""

from __future__ import annotations

from pathlib import Path

from tests.api.test_federation import API, get_wl, pool, report, wait_until_placed
from tests.conftest import start_hub
from tests.hubtest import HubProcess, wait_until, workload

NS = "team-r"
NO_CLUSTER_TIMEOUT = {"FLEETPLANE_CLUSTER_TIMEOUT_SECONDS": "600"}  # no heartbeats here: never NotReady


def reason(h: HubProcess, name: str) -> str:
    with h.client() as c:
        return str(((get_wl(c, name, NS).get("status") or {}).get("placement") or {}).get("reason") or "")


def set_stored_reason(url: str, name: str, text: str) -> None:
    """Reword a stored Workload's status.placement.reason in place (no hub running)."""
    from sqlalchemy import create_engine
    from sqlalchemy import text as sql

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            n = conn.execute(
                sql(
                    "UPDATE objects SET data = jsonb_set(data, '{status,placement,reason}', to_jsonb(CAST(:t AS text))) "
                    "WHERE resource LIKE '%workloads' AND namespace = :ns AND name = :n"
                ),
                {"t": text, "ns": NS, "n": name},
            ).rowcount
        assert n == 1, n
    finally:
        engine.dispose()


def h100_workload(name: str) -> dict:
    w = workload(name, NS, gpus=8)
    w["spec"]["gpu"]["models"] = ["H100"]
    return w


def l4_workload(name: str) -> dict:
    w = workload(name, NS, gpus=1)
    w["spec"]["gpu"]["models"] = ["L4"]
    return w


def test_a_restarted_controller_places_first_keeps_stored_pending_reasons_then_refreshes_them(
    tmp_path: Path,
    fresh_database,  # type: ignore[no-untyped-def]
) -> None:
    url = fresh_database()
    h = start_hub(tmp_path / "hub", url, **NO_CLUSTER_TIMEOUT)
    try:
        with h.client() as c:
            assert c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
            report(c, "east", "us-east-1", [pool("L4", "on-demand", 0.7, 1, 4, mem=24)])
            assert c.post(f"{API}/namespaces/{NS}/workloads", json=h100_workload("big")).status_code == 201
        engine_reason = wait_until(lambda: reason(h, "big"), what="big Pending with the engine's reason")
        assert engine_reason.startswith("0/1 clusters"), engine_reason

        # A crash. The stored reason is then the one the previous controller wrote; here it is
        # reworded in the database while no hub runs (Workload status is written only by the
        # controllers), so the test can tell which controller wrote what the API shows.
        h.stop(kill=True)
        stored = "0/1 clusters: as the previous controller explained it"
        set_stored_reason(url, "big", stored)

        # The restarted controller: a workload that fits is placed (capacity changes), and the
        # pending one keeps the reason it had; it is refreshed from the engine a little later.
        h.start()
        with h.client() as c:
            assert c.post(f"{API}/namespaces/{NS}/workloads", json=l4_workload("small")).status_code == 201
            placed = wait_until_placed(c, "small", NS)
        assert placed["status"]["placement"]["clusters"][0]["name"] == "east"
        assert reason(h, "big") == stored, "the first passes after the restart rebuilt an explanation already stored"
        assert wait_until(lambda: reason(h, "big") == engine_reason, timeout=60, what="big's reason refreshed")
        with h.client() as c:
            big = get_wl(c, "big", NS)
        assert big["status"]["phase"] == "Pending"
        assert big["status"]["placement"]["explanation"]["placed"] is False
    finally:
        h.stop()


def test_a_pending_reason_skipped_while_capacity_changes_is_rewritten_soon_after(
    tmp_path: Path,
    fresh_database,  # type: ignore[no-untyped-def]
) -> None:
    h = start_hub(tmp_path / "hub", fresh_database(), **NO_CLUSTER_TIMEOUT)
    try:
        with h.client() as c:
            assert c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
            report(c, "east", "us-east-1", [pool("L4", "on-demand", 0.7, 1, 4, mem=24)])
            wide = workload("wide", NS, gpus=8)  # 8 GPUs of any model on one node: no node has them yet
            assert c.post(f"{API}/namespaces/{NS}/workloads", json=wide).status_code == 201
        first = wait_until(lambda: reason(h, "wide"), what="wide Pending with the engine's reason")
        assert first.startswith("0/1 clusters"), first
        with h.client() as c:
            # Right away (well within the explanation's lifetime): more clusters, none that fits.
            report(c, "west", "us-west-2", [pool("L4", "spot", 0.3, 2, 4, mem=24)])
            report(c, "north", "eu-north-1", [pool("A100", "on-demand", 2.0, 1, 4)])
        refreshed = wait_until(
            lambda: (r := reason(h, "wide")).startswith("0/3 clusters") and r, timeout=60, what="wide's new reason"
        )
        counts = [int(part.split()[0]) for part in refreshed.split(":", 1)[1].split(",")]
        assert sum(counts) == 3, refreshed  # each of the three clusters is counted under one reason
    finally:
        h.stop()
