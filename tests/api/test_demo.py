"""`make up` runs `fleetplane up --demo`: a labelled simulated fleet whose sample workloads place at once."""

from __future__ import annotations

import pytest

from tests.api.test_federation import API, wait_until
from tests.hubtest import HubProcess, Kubectl, free_port


def test_demo_fleet_is_labelled_simulated_and_places_the_sample_workloads(
    tmp_path_factory: pytest.TempPathFactory,
    fresh_database,  # type: ignore[no-untyped-def]
) -> None:
    hub = HubProcess(
        tmp_path_factory.mktemp("demo"), fresh_database(), free_port(), free_port(), extra_args=["--demo"]
    ).start()
    try:
        with hub.client() as c:

            def placed() -> dict | None:
                items = {
                    w["metadata"]["name"]: w for w in c.get(f"{API}/namespaces/demo/workloads").json().get("items", [])
                }
                done = len(items) == 4 and all((w.get("status") or {}).get("message") for w in items.values())
                return items if done else None

            items = wait_until(placed, timeout=60, what="the demo workloads decided")
            clusters = c.get(f"{API}/clusters").json()["items"]
            assert len(clusters) == 3
            for cl in clusters:
                assert cl["spec"]["backend"] == "simulated"
                assert cl["metadata"]["labels"]["fleetplane.io/backend"] == "simulated"
        where = {n: [x["name"] for x in w["status"]["placement"].get("clusters") or []] for n, w in items.items()}
        assert where["llm-pretrain"] == ["sim-us-east-reserved"], "reserved H100 next to the dataset"
        assert where["finetune-spot"] == ["sim-us-west-spot"], "spot-preferred A100"
        assert where["giant-gang"] == [] and items["giant-gang"]["status"]["phase"] == "Pending"
        k = Kubectl(hub.kubeconfig, tmp_path_factory.mktemp("kc"))
        assert "simulated" in k("get", "clusters")
    finally:
        hub.stop()
