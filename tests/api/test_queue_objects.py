"""Queues and PriorityClasses on a real hub (real Postgres, controllers off): the storage rules,
who may write them, the submission rules for Workloads, and the REST views of queues.

No admission controller runs here: what the controller would write (a Queue's status, a
Workload's status.admission) is written as the hub's controllers write it, through the
registry as SYSTEM (`as_controllers`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from hub.registry.lifecycle import RegistryTx
from hub.registry.resources import BY_KIND
from hub.store.store import Store
from tests.hubtest import HubProcess, expect_status, workload

API = "/apis/fleetplane.io/v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}
CLASS_LABEL = "fleetplane.io/priority-class"


# ------------------------------------------------------------------ builders and helpers


def a_queue(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault(
        "resourceGroups", [{"flavors": [{"gpuModel": "H100", "capacityType": "on-demand", "nominalQuota": 16}]}]
    )
    return {"apiVersion": "fleetplane.io/v1alpha1", "kind": "Queue", "metadata": {"name": name}, "spec": spec}


def a_class(name: str, value: int, default: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        "globalDefault": default,
    }


def labelled(body: dict[str, Any], cls: str) -> dict[str, Any]:
    body["metadata"]["labels"] = {CLASS_LABEL: cls}
    return body


def as_controllers(hub: HubProcess, fn: Callable[[RegistryTx], Awaitable[Any]]) -> Any:
    """Run `fn` in one registry transaction as the hub's controllers (SYSTEM) on the hub's database."""
    assert hub.database_url is not None

    async def run() -> Any:
        store = Store(hub.database_url or "", pool_size=1)
        try:
            return await store.transact(lambda tx: fn(RegistryTx(tx)))
        finally:
            await store.close()

    return asyncio.run(run())


def write_status(hub: HubProcess, kind: str, namespace: str | None, name: str, status: dict[str, Any]) -> None:
    res = BY_KIND[kind]

    async def fn(rtx: RegistryTx) -> None:
        old = await rtx.get(res, namespace, name)
        assert old is not None, f"{kind} {name} is not stored"
        await rtx.update_status(res, old, status)

    as_controllers(hub, fn)


@pytest.fixture(scope="module")
def teams(hub: HubProcess) -> dict[str, str]:
    """Team tokens (creating them creates their namespaces): ml-team in ml, web-team in web,
    and line-team in lineup (only the queue-line test submits there)."""
    return {
        "ml": hub.team("ml-team", "ml")[0],
        "web": hub.team("web-team", "web")[0],
        "lineup": hub.team("line-team", "lineup")[0],
    }


@pytest.fixture
def admin(hub: HubProcess) -> Iterator[httpx.Client]:
    with hub.client() as c:
        yield c


def create(c: httpx.Client, obj: dict[str, Any]) -> httpx.Response:
    plural = {"Queue": "queues", "PriorityClass": "priorityclasses"}[obj["kind"]]
    return c.post(f"{API}/{plural}", json=obj)


def created(c: httpx.Client, obj: dict[str, Any]) -> dict[str, Any]:
    r = create(c, obj)
    assert r.status_code == 201, r.text
    return dict(r.json())


# ------------------------------------------------------------------ storage rules


def test_a_queue_and_a_priority_class_are_stored_with_their_defaults(admin: httpx.Client) -> None:
    q = created(admin, a_queue("stored", cohort="c1"))
    assert q["spec"]["queueingStrategy"] == "BestEffortFIFO"
    assert q["spec"]["preemption"] == {"withinQueue": "Never", "reclaimWithinCohort": "Never"}
    pc = created(admin, a_class("stored-class", 42))
    assert admin.get(f"{API}/priorityclasses/stored-class").json()["value"] == 42 == pc["value"]
    assert admin.get(f"{API}/queues/stored").json()["spec"]["cohort"] == "c1"


@pytest.mark.parametrize(
    ("flavor", "spec", "field", "says"),
    [
        (
            {"nominalQuota": 16, "lendingLimit": 20},
            {"cohort": "c"},
            "spec.resourceGroups[0].flavors[0].lendingLimit",
            "20 exceeds nominalQuota 16",
        ),
        (
            {"nominalQuota": 8, "borrowingLimit": 8},
            {},
            "spec.resourceGroups[0].flavors[0].borrowingLimit",
            "needs spec.cohort",
        ),
        ({"nominalQuota": 8}, {"namespaces": ["ml"], "defaultFor": ["web"]}, "spec.defaultFor[0]", '"web"'),
    ],
)
def test_a_bad_queue_is_refused_naming_the_field_and_nothing_is_stored(
    admin: httpx.Client, flavor: dict[str, Any], spec: dict[str, Any], field: str, says: str
) -> None:
    body = a_queue(
        "bad", resourceGroups=[{"flavors": [{"gpuModel": "H100", "capacityType": "on-demand", **flavor}]}], **spec
    )
    err = expect_status(create(admin, body), 422, "Invalid", field)
    assert says in err["message"] and 'Queue.fleetplane.io "bad" is invalid' in err["message"]
    assert admin.get(f"{API}/queues/bad").status_code == 404


def test_a_queue_listing_a_flavor_twice_is_refused(admin: httpx.Client) -> None:
    h100 = {"gpuModel": "H100", "capacityType": "spot", "nominalQuota": 4}
    body = a_queue("twice", resourceGroups=[{"flavors": [h100]}, {"flavors": [dict(h100, gpuModel="h100-80gb")]}])
    err = expect_status(create(admin, body), 422, "Invalid", "spec.resourceGroups[1].flavors[0]")
    assert "already listed at spec.resourceGroups[0].flavors[0]" in err["message"]


def test_a_namespace_defaults_to_one_queue_only_naming_the_other_queue(admin: httpx.Client) -> None:
    created(admin, a_queue("first-default", defaultFor=["defaults-ns"]))
    err = expect_status(
        create(admin, a_queue("second-default", defaultFor=["x", "defaults-ns"])), 422, "Invalid", "spec.defaultFor[1]"
    )
    assert 'namespace "defaults-ns" already defaults to Queue "first-default"' in err["message"]
    assert admin.get(f"{API}/queues/second-default").status_code == 404
    # Claiming it later by a patch is refused the same way; the first queue may keep it.
    created(admin, a_queue("third-default"))
    r = admin.patch(
        f"{API}/queues/third-default", content=json.dumps({"spec": {"defaultFor": ["defaults-ns"]}}), headers=MERGE
    )
    expect_status(r, 422, "Invalid", "spec.defaultFor[0]")
    r = admin.patch(f"{API}/queues/first-default", content='{"spec":{"cohort":"c9"}}', headers=MERGE)
    assert r.status_code == 200, r.text
    # Once the first lets it go, another queue may take it.
    r = admin.patch(f"{API}/queues/first-default", content='{"spec":{"defaultFor":null}}', headers=MERGE)
    assert r.status_code == 200, r.text
    r = admin.patch(
        f"{API}/queues/third-default", content=json.dumps({"spec": {"defaultFor": ["defaults-ns"]}}), headers=MERGE
    )
    assert r.status_code == 200, r.text


def test_only_one_priority_class_may_be_the_global_default(admin: httpx.Client) -> None:
    created(admin, a_class("the-default", 5, default=True))
    err = expect_status(create(admin, a_class("another-default", 7, default=True)), 422, "Invalid", "globalDefault")
    assert 'PriorityClass "the-default" is already the global default' in err["message"]
    created(admin, a_class("not-default", 7))
    r = admin.patch(f"{API}/priorityclasses/not-default", content='{"globalDefault":true}', headers=MERGE)
    expect_status(r, 422, "Invalid", "globalDefault")
    assert admin.get(f"{API}/priorityclasses/not-default").json()["globalDefault"] is False
    r = admin.delete(f"{API}/priorityclasses/the-default")
    assert r.status_code == 200, r.text


def test_teams_read_queues_and_priority_classes_but_never_write_them(
    hub: HubProcess, admin: httpx.Client, teams: dict[str, str]
) -> None:
    created(admin, a_queue("team-readable"))
    created(admin, a_class("team-readable", 1))
    with hub.client(teams["ml"]) as team:
        assert team.get(f"{API}/queues/team-readable").status_code == 200
        assert "team-readable" in [i["metadata"]["name"] for i in team.get(f"{API}/priorityclasses").json()["items"]]
        for plural, obj in (("queues", a_queue("by-team")), ("priorityclasses", a_class("by-team", 1))):
            err = expect_status(team.post(f"{API}/{plural}", json=obj), 403, "Forbidden")
            assert f'team "ml-team" cannot create {plural}' in err["message"]
            r = team.patch(f"{API}/{plural}/team-readable", content='{"metadata":{"labels":{"x":"y"}}}', headers=MERGE)
            expect_status(r, 403, "Forbidden")
            r = team.patch(
                f"{API}/{plural}/by-team?fieldManager=t", content=json.dumps(obj), headers=APPLY
            )  # server-side apply creating one
            assert r.status_code == 403, r.text
            expect_status(team.delete(f"{API}/{plural}/team-readable"), 403, "Forbidden")
        r = team.patch(f"{API}/queues/team-readable/status", content='{"status":{"pendingWorkloads":9}}', headers=MERGE)
        expect_status(r, 403, "Forbidden")
    assert admin.get(f"{API}/queues/by-team").status_code == 404
    assert "labels" not in admin.get(f"{API}/queues/team-readable").json()["metadata"]


def test_queue_status_is_written_only_by_the_controllers(admin: httpx.Client) -> None:
    created(admin, a_queue("status-owned"))
    r = admin.patch(f"{API}/queues/status-owned/status", content='{"status":{"pendingWorkloads":9}}', headers=MERGE)
    err = expect_status(r, 403, "Forbidden")
    assert "written only by the hub's controllers" in err["message"]


# ------------------------------------------------------------------ submission rules


def test_a_team_cannot_submit_to_a_queue_that_does_not_list_its_namespace(
    hub: HubProcess, admin: httpx.Client, teams: dict[str, str]
) -> None:
    created(admin, a_queue("ml-only", namespaces=["ml"]))
    with hub.client(teams["web"]) as web:
        r = web.post(f"{API}/namespaces/web/workloads", json=workload("sneaky", "web", queue="ml-only"))
        err = expect_status(r, 403, "Forbidden")
        assert 'spec.queue: Queue "ml-only" does not accept workloads from namespace "web"' in err["message"]
        assert web.get(f"{API}/namespaces/web/workloads/sneaky").status_code == 404, "nothing stored"
        # Moving an existing workload there by a patch or by server-side apply: the same answer.
        assert web.post(f"{API}/namespaces/web/workloads", json=workload("mover", "web")).status_code == 201
        r = web.patch(f"{API}/namespaces/web/workloads/mover", content='{"spec":{"queue":"ml-only"}}', headers=MERGE)
        expect_status(r, 403, "Forbidden")
        r = web.patch(
            f"{API}/namespaces/web/workloads/applied?fieldManager=t",
            content=json.dumps(workload("applied", "web", queue="ml-only")),
            headers=APPLY,
        )
        expect_status(r, 403, "Forbidden")
        assert "queue" not in web.get(f"{API}/namespaces/web/workloads/mover").json()["spec"]
    with hub.client(teams["ml"]) as ml:
        r = ml.post(f"{API}/namespaces/ml/workloads", json=workload("allowed", "ml", queue="ml-only"))
        assert r.status_code == 201, r.text


def test_an_admin_may_submit_to_a_queue_that_does_not_list_the_namespace(
    admin: httpx.Client, teams: dict[str, str]
) -> None:
    created(admin, a_queue("ml-only-admin", namespaces=["ml"]))
    r = admin.post(f"{API}/namespaces/web/workloads", json=workload("by-admin", "web", queue="ml-only-admin"))
    assert r.status_code == 201, r.text
    pos = admin.get("/v1/namespaces/web/workloads/by-admin/position").json()
    assert pos["state"] == "Inadmissible" and 'may not submit to Queue "ml-only-admin"' in pos["reason"]


def test_a_workload_naming_a_queue_that_does_not_exist_is_accepted_and_waits_for_it(
    hub: HubProcess, teams: dict[str, str]
) -> None:
    with hub.client(teams["ml"]) as ml:
        r = ml.post(f"{API}/namespaces/ml/workloads", json=workload("early", "ml", queue="not-yet"))
        assert r.status_code == 201, r.text
        pos = ml.get("/v1/namespaces/ml/workloads/early/position").json()
        assert pos["state"] == "Inadmissible" and pos["reason"] == 'Queue "not-yet" does not exist'


def test_an_unknown_priority_class_is_refused_listing_the_known_classes(
    hub: HubProcess, admin: httpx.Client, teams: dict[str, str]
) -> None:
    created(admin, a_class("urgent", 1000))
    with hub.client(teams["ml"]) as ml:
        r = ml.post(f"{API}/namespaces/ml/workloads", json=labelled(workload("typo", "ml"), "urgnet"))
        err = expect_status(r, 422, "Invalid", f"metadata.labels[{CLASS_LABEL}]")
        assert 'unknown PriorityClass "urgnet" (known: ' in err["message"] and "urgent" in err["message"]
        assert ml.get(f"{API}/namespaces/ml/workloads/typo").status_code == 404
        r = ml.post(f"{API}/namespaces/ml/workloads", json=labelled(workload("hot", "ml"), "urgent"))
        assert r.status_code == 201, r.text
        view = ml.get("/v1/namespaces/ml/workloads/hot").json()
        assert view["priority"] == 1000, "the REST view shows the resolved priority"
    r = admin.post(f"{API}/namespaces/ml/workloads", json=labelled(workload("admin-typo", "ml"), "nope"))
    expect_status(r, 422, "Invalid", f"metadata.labels[{CLASS_LABEL}]")


# ------------------------------------------------------------------ REST


def test_rest_queue_view_shows_the_spec_and_zeros_before_the_controller_wrote_status(
    hub: HubProcess, admin: httpx.Client, teams: dict[str, str]
) -> None:
    created(
        admin,
        a_queue(
            "viewed",
            cohort="shared",
            fairSharing={"weight": 2},
            resourceGroups=[
                {
                    "flavors": [
                        {"gpuModel": "H100", "capacityType": "reserved", "nominalQuota": 16},
                        {"gpuModel": "A100", "capacityType": "spot", "nominalQuota": 8, "borrowingLimit": 4},
                    ]
                }
            ],
        ),
    )
    with hub.client(teams["ml"]) as ml:
        v = ml.get("/v1/queues/viewed").json()
    assert (v["cohort"], v["weight"], v["strategy"], v["usageReported"]) == ("shared", 2.0, "BestEffortFIFO", False)
    assert [(f["gpuModel"], f["capacityType"], f["nominalQuota"], f["used"], f["available"]) for f in v["flavors"]] == [
        ("H100", "reserved", 16, 0, 0),
        ("A100", "spot", 8, 0, 0),
    ]
    assert v["flavors"][1]["borrowingLimit"] == 4 and (v["pending"], v["admitted"]) == (0, 0)
    write_status(
        hub,
        "Queue",
        None,
        "viewed",
        {
            "pendingWorkloads": 3,
            "admittedWorkloads": 2,
            "weightedShare": 0.25,
            "flavorsUsage": [
                {"gpuModel": "A100", "capacityType": "spot", "used": 12, "nominal": 8, "borrowed": 4, "available": 0}
            ],
        },
    )
    v = admin.get("/v1/queues/viewed").json()
    assert v["usageReported"] is True and (v["pending"], v["admitted"], v["weightedShare"]) == (3, 2, 0.25)
    a100 = v["flavors"][1]
    assert (a100["used"], a100["borrowed"], a100["available"]) == (12, 4, 0)
    assert v["flavors"][0]["used"] == 0, "a flavor the status does not list is unused"
    assert "viewed" in [q["name"] for q in admin.get("/v1/queues").json()["items"]]
    expect_status(admin.get("/v1/queues/no-such-queue"), 404, "NotFound")


def test_rest_queue_line_orders_by_priority_then_age_and_hides_other_teams_names(
    hub: HubProcess, admin: httpx.Client, teams: dict[str, str]
) -> None:
    created(admin, a_class("line-high", 500))
    created(admin, a_queue("line", defaultFor=["lineup"]))
    with hub.client(teams["lineup"]) as ml, hub.client(teams["web"]) as web:
        for name, cls in (("ml-1", None), ("ml-2", "line-high"), ("ml-3", None)):
            body = workload(name, "lineup", gpus=2, replicas=2)  # no spec.queue: lineup's default queue
            r = ml.post(f"{API}/namespaces/lineup/workloads", json=labelled(body, cls) if cls else body)
            assert r.status_code == 201, r.text
        r = web.post(f"{API}/namespaces/web/workloads", json=workload("web-1", "web", queue="line", priority=600))
        assert r.status_code == 201, r.text
        r = ml.post(f"{API}/namespaces/lineup/workloads", json=workload("ml-admitted", "lineup"))
        assert r.status_code == 201, r.text
        write_status(
            hub,
            "Workload",
            "lineup",
            "ml-admitted",
            {"phase": "Pending", "admission": {"queue": "line", "gpus": 8, "priority": 0}},
        )
        write_status(hub, "Workload", "lineup", "ml-3", {"phase": "Pending", "message": "queue line: no quota"})

        mine = ml.get("/v1/queues/line/workloads").json()
        # web-1 (600) > ml-2 (500) > ml-1 (0, older) > ml-3 (0); ml-admitted holds quota.
        assert (mine["waiting"], mine["hidden"]) == (4, 1)
        assert [(e["position"], e["name"], e["priority"], e["aheadHigherPriority"]) for e in mine["items"]] == [
            (2, "ml-2", 500, 1),
            (3, "ml-1", 0, 2),
            (4, "ml-3", 0, 2),
        ]
        assert mine["items"][2]["message"] == "queue line: no quota" and mine["items"][0]["gpus"] == 4
        assert "web-1" not in json.dumps(mine), "another team's workload is counted, not named"
        everyone = admin.get("/v1/queues/line/workloads").json()
        assert [e["name"] for e in everyone["items"]] == ["web-1", "ml-2", "ml-1", "ml-3"] and everyone["hidden"] == 0

        pos = ml.get("/v1/namespaces/lineup/workloads/ml-1/position").json()
        assert (pos["state"], pos["queue"], pos["position"], pos["of"], pos["aheadHigherPriority"]) == (
            "Waiting",
            "line",
            3,
            4,
            2,
        )
        done = ml.get("/v1/namespaces/lineup/workloads/ml-admitted/position").json()
        assert done["state"] == "Admitted" and "position" not in done and done["admission"]["queue"] == "line"
        expect_status(web.get("/v1/namespaces/lineup/workloads/ml-1/position"), 404, "NotFound")

        view = ml.get("/v1/namespaces/lineup/workloads/ml-admitted").json()
        assert view["queue"] == "line" and view["admission"]["gpus"] == 8
        listed = {w["name"]: w for w in ml.get("/v1/namespaces/lineup/workloads").json()["items"]}
        assert listed["ml-2"]["priority"] == 500 and listed["ml-1"]["queue"] == "line"


def test_whatif_with_queues_answers_the_admission_report_next_to_the_placement(
    hub: HubProcess, admin: httpx.Client
) -> None:
    body: dict[str, Any] = {"workloads": [workload("wi-1", "ml", gpus=8, queue="wi-q")]}
    plain = admin.post("/v1/whatif", json=dict(body, queues=[]))
    assert plain.status_code == 200, plain.text
    assert "admission" not in plain.json() or plain.json()["admission"] is None
    queue = a_queue(
        "wi-q", resourceGroups=[{"flavors": [{"gpuModel": "H100", "capacityType": "on-demand", "nominalQuota": 4}]}]
    )
    r = admin.post("/v1/whatif", json=dict(body, queues=[queue]))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["decisions"] == plain.json()["decisions"], "the placement answer is unchanged"
    adm = out["admission"]
    assert adm["kind"] == "AdmissionReport" and adm["queuesFrom"] == "request"
    (d,) = adm["decisions"]
    assert (d["workload"], d["queue"], d["phase"]) == ("ml/wi-1", "wi-q", "Waiting")
    assert "needs 8 GPUs, more than the queue can ever hold (4)" in d["reason"]
    # Without queues in the body, the hub's stored Queues are used (wi-q is not one of them).
    created(admin, a_queue("wi-stored"))
    stored = admin.post("/v1/whatif", json=body).json()["admission"]
    assert stored["queuesFrom"] == "store" and "wi-stored" in [q["name"] for q in stored["queues"]]
    assert (stored["decisions"][0]["phase"], stored["decisions"][0]["reason"]) == (
        "Inadmissible",
        'Queue "wi-q" does not exist',
    )
    bad = dict(
        queue,
        spec=dict(
            queue["spec"],
            resourceGroups=[
                {"flavors": [{"gpuModel": "H100", "capacityType": "spot", "nominalQuota": 4, "borrowingLimit": 2}]}
            ],
        ),
    )
    err = expect_status(admin.post("/v1/whatif", json=dict(body, queues=[bad])), 422, "Invalid")
    assert err["details"]["causes"][0]["field"] == "queues[0].spec.resourceGroups[0].flavors[0].borrowingLimit"


def test_whatif_counts_the_quota_stored_workloads_hold_now(
    hub: HubProcess, admin: httpx.Client, teams: dict[str, str]
) -> None:
    on_demand = {"gpuModel": "H100", "capacityType": "on-demand", "nominalQuota": 8}
    created(admin, a_queue("wi-live", resourceGroups=[{"flavors": [on_demand]}]))
    r = admin.post(f"{API}/namespaces/ml/workloads", json=workload("wi-holder", "ml", gpus=8, queue="wi-live"))
    assert r.status_code == 201, r.text
    body = {"workloads": [workload("wi-next", "ml", gpus=8, queue="wi-live")]}
    (before,) = admin.post("/v1/whatif", json=body).json()["admission"]["decisions"]
    assert "quota allows 8 (8 available)" in before["reason"], before  # then no cluster fits (none here)
    admission = {"queue": "wi-live", "flavor": {"gpuModel": "H100", "capacityType": "on-demand"}, "gpus": 8}
    write_status(hub, "Workload", "ml", "wi-holder", {"phase": "Placed", "admission": admission})
    (after,) = admin.post("/v1/whatif", json=body).json()["admission"]["decisions"]
    assert after["phase"] == "Waiting" and "queue wi-live: H100 on-demand 8/8 used" in after["reason"], after
