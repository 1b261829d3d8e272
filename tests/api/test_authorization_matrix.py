"""Authorization as a matrix: every verb × every kind × every kind of caller, against a real hub.

The targets live in team-a (team "alpha") and belong to cluster east. Callers: the admin, the
team, another team (beta, team-b), the east agent, another agent (west), and anonymous. Every
write is a dry run (`dryRun=All`), which passes through the same checks as a real write and
stores nothing, so one module's worth of objects serves every cell and the test can assert
that nothing stored changed. Real writes of the rules that matter most are in the tests
after the matrix.

A cell is one of: an HTTP code; SEEN / UNSEEN for list and watch (whether the target is in the
answer); FIELD for a 403 that comes from a field-level rule (an agent may change only some
fields of its Cluster and only finalizers of its Assignments) — `kubectl auth can-i` answers
"yes" for those, and the 403 names the limit.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.hubtest import HubProcess, workload

API = "/apis/fleetplane.io/v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}
DRY = {"dryRun": "All"}

SUBJECTS = ("admin", "team", "other-team", "agent", "other-agent", "anonymous")
KINDS = ("Namespace", "Workload", "Dataset", "Assignment", "Cluster", "Topology")
VERBS = ("get", "list", "watch", "create", "update", "merge-patch", "apply", "delete", "status-update", "status-patch")

SEEN, UNSEEN, FIELD = "seen", "unseen", "403 (field)"
OK = {
    "get": 200,
    "list": SEEN,
    "watch": SEEN,
    "create": 409,  # the target's own name: AlreadyExists means every check before the store passed
    "update": 200,
    "merge-patch": 200,
    "apply": 200,
    "delete": 200,
    "status-update": 200,
    "status-patch": 200,
}
READS = ("get", "list", "watch")
STATUS = ("status-update", "status-patch")


def expected(subject: str, kind: str, verb: str) -> Any:
    """The rules of hub.registry.access, written out per cell."""
    ok, hidden = OK[verb], (UNSEEN if verb in ("list", "watch") else 404)
    if subject == "anonymous":
        return 401
    if subject == "admin":
        return 403 if kind == "Workload" and verb in STATUS else ok
    if subject in ("team", "other-team"):
        if kind in ("Cluster", "Topology"):
            return ok if verb in READS else 403
        if subject == "other-team":
            return hidden  # team-a and everything in it is outside team-b's scope
        if kind in ("Workload", "Dataset"):
            return 403 if verb in STATUS else ok
        if kind == "Assignment":
            return ok if verb in (*READS, "delete") else 403
        return ok if verb in READS else 403  # its own Namespace: read only
    # agents
    if kind not in ("Cluster", "Assignment") or subject == "other-agent":
        return hidden
    if verb in (*READS, *STATUS):
        return ok
    if verb in ("update", "merge-patch", "apply"):
        return FIELD  # the cells add a label: not among what an agent may change
    return 403  # create, delete


# ------------------------------------------------------------------ the fleet under test


@dataclass(frozen=True)
class Target:
    kind: str
    collection: str  # URL of the collection (for namespaced kinds: in namespace {ns})
    name: str
    missing: str
    namespaced: bool
    status: dict[str, Any]

    def coll(self, ns: str = "team-a") -> str:
        return self.collection.format(ns=ns)

    def item(self, name: str | None = None, ns: str = "team-a") -> str:
        return f"{self.coll(ns)}/{name or self.name}"


def _ns(kind: str) -> str:
    return f"{API}/namespaces/{{ns}}/{kind}"


TARGETS = {
    "Namespace": Target("Namespace", "/api/v1/namespaces", "team-a", "team-zz", False, {"phase": "Active"}),
    "Workload": Target("Workload", _ns("workloads"), "w-a", "w-missing", True, {"phase": "Succeeded"}),
    "Dataset": Target("Dataset", _ns("datasets"), "d-a", "d-missing", True, {"matrix": "x"}),
    "Assignment": Target("Assignment", _ns("assignments"), "asg-east", "asg-missing", True, {"phase": "Running"}),
    "Cluster": Target("Cluster", f"{API}/clusters", "east", "nowhere", False, {"freeGpus": 1}),
    "Topology": Target("Topology", f"{API}/topologies", "topo", "topo-missing", False, {"matrix": "x"}),
}


def join(hub: HubProcess, cluster: str) -> str:
    jt = hub.cli("cluster", "join-token", "create", cluster).splitlines()[-1]
    with httpx.Client(base_url=hub.http_url) as c:
        r = c.post("/v1/clusters/join", json={"joinToken": jt, "clusterName": cluster})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def assignment(name: str, cluster: str) -> dict[str, Any]:
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Assignment",
        "metadata": {"name": name},
        "spec": {"clusterName": cluster, "workloadRef": {"name": "w-a"}, "epoch": 1, "manifests": []},
    }


def dataset(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": name},
        "spec": {"sizeGiB": 10, "locations": [{"site": "us-east-1"}], **spec},
    }


@pytest.fixture(scope="module")
def tokens(hub: HubProcess) -> dict[str, str]:
    toks = {
        "admin": hub.admin_token,
        "team": hub.team("alpha", "team-a")[0],
        "other-team": hub.team("beta", "team-b")[0],
        "agent": join(hub, "east"),
        "other-agent": join(hub, "west"),
        "anonymous": "",
    }
    with hub.client() as admin:
        for path, body in [
            (TARGETS["Workload"].coll(), workload("w-a")),
            (TARGETS["Dataset"].coll(), dataset("d-a")),
            (TARGETS["Assignment"].coll(), assignment("asg-east", "east")),
            (TARGETS["Assignment"].coll(), assignment("asg-west", "west")),
            (TARGETS["Topology"].coll(), {"metadata": {"name": "topo"}, "spec": {"sites": [{"name": "us-east-1"}]}}),
        ]:
            r = admin.post(path, json=body)
            assert r.status_code == 201, r.text
        r = admin.patch(f"{API}/clusters/east/status", content=json.dumps({"status": {"freeGpus": 8}}), headers=MERGE)
        assert r.status_code == 200, r.text
    return toks


# ------------------------------------------------------------------ one cell


def stored(admin: httpx.Client, t: Target) -> dict[str, Any]:
    r = admin.get(t.item())
    assert r.status_code == 200, r.text
    return dict(r.json())


def _body_for(original: dict[str, Any], name: str, ns: str, t: Target) -> dict[str, Any]:
    body = copy.deepcopy(original)
    m = body["metadata"]
    for k in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
        m.pop(k, None)
    m["name"] = name
    if t.namespaced:
        m["namespace"] = ns
    return body


def request(c: httpx.Client, t: Target, verb: str, original: dict[str, Any], name: str, ns: str) -> httpx.Response:
    """One cell's request: `verb` on the object `name` (in `ns`) of the target's kind."""
    body = _body_for(original, name, ns, t)
    labelled = copy.deepcopy(body)
    labelled["metadata"].setdefault("labels", {})["matrix"] = verb
    if verb == "get":
        return c.get(t.item(name, ns))
    if verb == "list":
        return c.get(t.coll(ns))
    if verb == "create":
        body.pop("status", None)
        return c.post(t.coll(ns), json=body, params=DRY)
    if verb == "update":
        return c.put(t.item(name, ns), json=labelled, params=DRY)
    if verb == "merge-patch":
        return c.patch(
            t.item(name, ns), content='{"metadata":{"labels":{"matrix":"patch"}}}', headers=MERGE, params=DRY
        )
    if verb == "apply":
        labelled.pop("status", None)
        labelled["metadata"].pop("annotations", None)
        labelled["metadata"].pop("finalizers", None)
        params = {**DRY, "fieldManager": "matrix", "force": "true"}
        return c.patch(t.item(name, ns), content=json.dumps(labelled), headers=APPLY, params=params)
    if verb == "delete":
        return c.delete(t.item(name, ns), params=DRY)
    if verb == "status-update":
        return c.put(t.item(name, ns) + "/status", json={**body, "status": t.status}, params=DRY)
    if verb == "status-patch":
        return c.patch(
            t.item(name, ns) + "/status", content=json.dumps({"status": t.status}), headers=MERGE, params=DRY
        )
    raise AssertionError(verb)


def outcome(t: Target, verb: str, r: httpx.Response) -> Any:
    if verb == "list" and r.status_code == 200:
        return SEEN if t.name in [i["metadata"]["name"] for i in r.json()["items"]] else UNSEEN
    message = r.json().get("message", "") if r.status_code == 403 else ""
    if verb in ("update", "merge-patch", "apply") and "cluster agent" in message and " only " in message:
        return FIELD
    return r.status_code


def watch_outcome(hub: HubProcess, token: str, t: Target) -> Any:
    with (
        hub.client(token) as c,
        c.stream("GET", t.coll(), params={"watch": "true", "resourceVersion": "0", "timeoutSeconds": "1"}) as s,
    ):
        if s.status_code != 200:
            return s.status_code
        names = [json.loads(line)["object"]["metadata"].get("name") for line in s.iter_lines() if line]
    return SEEN if t.name in names else UNSEEN


def normalised(r: httpx.Response, name: str, ns: str, t: Target) -> tuple[int, str]:
    """The answer with the asked-for name and namespace written as the target's."""
    text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", t.name, r.text).replace(ns, "team-a")
    return r.status_code, text


@dataclass
class Matrix:
    cells: dict[tuple[str, str, str], Any]
    twins: dict[tuple[str, str, str], list[tuple[str, tuple[int, str], tuple[int, str]]]]
    rv_before: str
    rv_after: str


def current_rv(admin: httpx.Client) -> str:
    return str(admin.get("/api/v1/namespaces").json()["metadata"]["resourceVersion"])


@pytest.fixture(scope="module")
def matrix(hub: HubProcess, tokens: dict[str, str]) -> Matrix:
    cells: dict[tuple[str, str, str], Any] = {}
    twins: dict[tuple[str, str, str], list[tuple[str, tuple[int, str], tuple[int, str]]]] = {}
    with hub.client() as admin:
        originals = {k: stored(admin, t) for k, t in TARGETS.items()}
        rv_before = current_rv(admin)
        with ThreadPoolExecutor(max_workers=12) as pool:
            watches = {(s, k): pool.submit(watch_outcome, hub, tokens[s], TARGETS[k]) for s in SUBJECTS for k in KINDS}
            for s in SUBJECTS:
                with hub.client(tokens[s]) as c:
                    for k in KINDS:
                        t = TARGETS[k]
                        for verb in VERBS:
                            if verb == "watch":
                                continue
                            r = request(c, t, verb, originals[k], t.name, "team-a")
                            cells[(s, k, verb)] = outcome(t, verb, r)
                            if r.status_code != 404:
                                continue
                            # The same request for a missing object, and (namespaced kinds) in a
                            # missing namespace: it must read exactly the same.
                            seen = normalised(r, t.name, "team-a", t)
                            variants = [(t.missing, "team-a")] + ([(t.name, "team-zz")] if t.namespaced else [])
                            twins[(s, k, verb)] = [
                                (f"{ns}/{n}", seen, normalised(request(c, t, verb, originals[k], n, ns), n, ns, t))
                                for n, ns in variants
                            ]
            for (s, k), f in watches.items():
                cells[(s, k, "watch")] = f.result()
        rv_after = current_rv(admin)
    return Matrix(cells, twins, rv_before, rv_after)


# ------------------------------------------------------------------ the matrix


@pytest.mark.parametrize("subject", SUBJECTS)
def test_each_caller_is_allowed_exactly_the_cells_the_rules_allow(matrix: Matrix, subject: str) -> None:
    wrong = [
        f"{kind:<10} {verb:<13} expected {expected(subject, kind, verb)!s:<12} got {matrix.cells[(subject, kind, verb)]}"
        for kind in KINDS
        for verb in VERBS
        if matrix.cells[(subject, kind, verb)] != expected(subject, kind, verb)
    ]
    assert not wrong, f"{subject}:\n" + "\n".join(wrong)


def test_a_refusal_outside_the_callers_scope_reads_the_same_for_existing_and_missing_objects(matrix: Matrix) -> None:
    assert len(matrix.twins) > 100, "every hidden cell was compared"
    leaks = [
        f"{s} {k} {verb} on {where}:\n  existing: {seen}\n  missing:  {other}"
        for (s, k, verb), pairs in matrix.twins.items()
        for where, seen, other in pairs
        if seen != other
    ]
    assert not leaks, "\n".join(leaks)


def test_no_cell_of_the_matrix_changed_anything_stored(matrix: Matrix) -> None:
    assert matrix.rv_after == matrix.rv_before


def test_can_i_agrees_with_every_cell_of_the_matrix(hub: HubProcess, tokens: dict[str, str]) -> None:
    """The SelfSubjectAccessReview answer for each cell is the cell's (FIELD cells: "yes")."""
    as_review = {"merge-patch": "patch", "apply": "patch", "status-update": "update", "status-patch": "patch"}
    disagree = []
    for s in SUBJECTS[:-1]:
        with hub.client(tokens[s]) as c:
            for k in KINDS:
                t = TARGETS[k]
                for verb in VERBS:
                    group = "" if k == "Namespace" else "fleetplane.io"
                    attrs = {
                        "verb": as_review.get(verb, verb),
                        "group": group,
                        "resource": t.coll().rsplit("/", 1)[-1],
                        "subresource": "status" if verb in STATUS else "",
                        "namespace": "team-a" if t.namespaced else "",
                        "name": "" if verb in ("list", "watch", "create") else t.name,
                    }
                    r = c.post(
                        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                        json={"spec": {"resourceAttributes": attrs}},
                    )
                    assert r.status_code == 201, r.text
                    allowed = r.json()["status"]["allowed"]
                    want = expected(s, k, verb)
                    if want == UNSEEN:
                        continue  # "yes, your part of the list" and "no" both leave the target out
                    if allowed != (want == OK[verb] or want == FIELD):
                        disagree.append(f"{s} {k} {verb}: can-i {allowed}, API {want} ({r.json()['status']})")
    assert not disagree, "\n".join(disagree)


# ------------------------------------------------------------------ the rules that matter, for real


@pytest.fixture
def clients(hub: HubProcess, tokens: dict[str, str]) -> Iterator[dict[str, httpx.Client]]:
    cs = {s: hub.client(tok) for s, tok in tokens.items()}
    yield cs
    for c in cs.values():
        c.close()


def _status_of(admin: httpx.Client, path: str) -> Any:
    return admin.get(path).json().get("status")


def test_a_team_cannot_mark_its_workload_succeeded_or_bump_its_placement_epoch(
    clients: dict[str, httpx.Client],
) -> None:
    team, admin = clients["team"], clients["admin"]
    path = TARGETS["Workload"].item()
    before = _status_of(admin, path)
    attempts: list[Callable[[], httpx.Response]] = [
        lambda: team.patch(path + "/status", content='{"status":{"phase":"Succeeded"}}', headers=MERGE),
        lambda: team.patch(path + "/status", content='{"status":{"placement":{"epoch":99}}}', headers=MERGE),
        lambda: team.put(path + "/status", json={**team.get(path).json(), "status": {"phase": "Succeeded"}}),
        lambda: team.patch(
            path + "/status",
            content='[{"op":"add","path":"/status","value":{"phase":"Failed"}}]',
            headers={"Content-Type": "application/json-patch+json"},
        ),
    ]
    for attempt in attempts:
        r = attempt()
        assert r.status_code == 403 and r.json()["reason"] == "Forbidden", r.text
        assert 'workloads.fleetplane.io "w-a"' in r.json()["message"] and "workloads/status" in r.json()["message"]
    # Status sent on the main resource is not a way round: it is ignored there.
    r = team.patch(path, content='{"status":{"phase":"Succeeded"},"spec":{"priority":1}}', headers=MERGE)
    assert r.status_code == 200 and r.json().get("status") == before
    assert _status_of(admin, path) == before


def test_only_the_hubs_controllers_write_a_workloads_status_not_even_an_admin(
    clients: dict[str, httpx.Client],
) -> None:
    r = clients["admin"].patch(
        TARGETS["Workload"].item() + "/status", content='{"status":{"phase":"Succeeded"}}', headers=MERGE
    )
    assert r.status_code == 403 and "written only by the hub's controllers" in r.json()["message"]


def test_an_agent_reports_its_own_cluster_and_assignment_status(clients: dict[str, httpx.Client]) -> None:
    agent, admin = clients["agent"], clients["admin"]
    r = agent.patch(f"{API}/clusters/east/status", content='{"status":{"freeGpus":3}}', headers=MERGE)
    assert r.status_code == 200, r.text
    assert admin.get(f"{API}/clusters/east").json()["status"]["freeGpus"] == 3
    path = TARGETS["Assignment"].item()
    r = agent.patch(path + "/status", content='{"status":{"phase":"Running"}}', headers=MERGE)
    assert r.status_code == 200, r.text
    assert admin.get(path).json()["status"]["phase"] == "Running"


def test_an_agent_may_set_only_its_clusters_backend_on_the_main_resource(clients: dict[str, httpx.Client]) -> None:
    agent, admin = clients["agent"], clients["admin"]
    # Exactly what spoke_agent.Agent.mark_backend sends when it starts.
    backend = {"metadata": {"labels": {"fleetplane.io/backend": "simulated"}}, "spec": {"backend": "simulated"}}
    r = agent.patch(f"{API}/clusters/east", content=json.dumps(backend), headers=MERGE)
    assert r.status_code == 200, r.text
    assert admin.get(f"{API}/clusters/east").json()["spec"]["backend"] == "simulated"
    for patch in ({"spec": {"region": "moon-1"}}, {"metadata": {"labels": {"gpu": "free"}}}):
        r = agent.patch(f"{API}/clusters/east", content=json.dumps(patch), headers=MERGE)
        assert r.status_code == 403, r.text
        assert "spec.backend" in r.json()["message"] and 'clusters.fleetplane.io "east"' in r.json()["message"]
    assert admin.get(f"{API}/clusters/east").json()["spec"].get("region") is None


def test_an_agent_may_remove_but_not_add_its_assignments_finalizers(
    hub: HubProcess, clients: dict[str, httpx.Client]
) -> None:
    agent, admin = clients["agent"], clients["admin"]
    body = assignment("asg-fin", "east")
    body["metadata"]["finalizers"] = ["fleetplane.io/agent-cleanup"]
    assert admin.post(TARGETS["Assignment"].coll(), json=body).status_code == 201
    path = TARGETS["Assignment"].item("asg-fin")
    r = agent.patch(path, content='{"metadata":{"finalizers":["fleetplane.io/agent-cleanup","x.io/y"]}}', headers=MERGE)
    assert r.status_code == 403
    r = agent.patch(path, content='{"metadata":{"finalizers":null}}', headers=MERGE)
    assert r.status_code == 200 and not r.json()["metadata"].get("finalizers")


def test_only_an_admin_shares_a_dataset_with_other_namespaces(clients: dict[str, httpx.Client]) -> None:
    team, admin = clients["team"], clients["admin"]
    coll = TARGETS["Dataset"].coll()
    r = team.post(coll, json=dataset("shared", sharedWith=["team-b"]))
    assert r.status_code == 403 and "spec.sharedWith" in r.json()["message"], r.text
    assert team.post(coll, json=dataset("shared")).status_code == 201
    share = '{"spec":{"sharedWith":["team-b"]}}'
    r = team.patch(f"{coll}/shared", content=share, headers=MERGE)
    assert r.status_code == 403 and 'datasets.fleetplane.io "shared"' in r.json()["message"]
    assert admin.patch(f"{coll}/shared", content=share, headers=MERGE).status_code == 200
    # The team still owns the rest of its Dataset, and keeping the share as it is is fine...
    r = team.patch(f"{coll}/shared", content='{"spec":{"sizeGiB":20}}', headers=MERGE)
    assert r.status_code == 200 and r.json()["spec"]["sharedWith"] == ["team-b"]
    # ...but taking it back is the admin's decision too.
    r = team.patch(f"{coll}/shared", content='{"spec":{"sharedWith":null}}', headers=MERGE)
    assert r.status_code == 403


def test_server_side_apply_of_a_bad_body_outside_scope_is_the_same_404_either_way(
    clients: dict[str, httpx.Client],
) -> None:
    """The reported leak: apply answered 404 for an existing object and 403/422 for a missing one."""
    bad = json.dumps({"apiVersion": "fleetplane.io/v1alpha1", "kind": "Assignment", "spec": {"epoch": "x"}})
    params = {"fieldManager": "probe"}
    for who, coll in (("other-agent", TARGETS["Assignment"].coll()), ("other-team", TARGETS["Assignment"].coll())):
        there = clients[who].patch(f"{coll}/asg-east", content=bad, headers=APPLY, params=params)
        absent = clients[who].patch(f"{coll}/asg-nope", content=bad, headers=APPLY, params=params)
        assert there.status_code == absent.status_code == 404
        assert there.json()["message"].replace("asg-east", "X") == absent.json()["message"].replace("asg-nope", "X")
    cl = f"{API}/clusters"
    body = json.dumps({"apiVersion": "fleetplane.io/v1alpha1", "kind": "Cluster", "spec": {"backend": "nope"}})
    there = clients["other-agent"].patch(f"{cl}/east", content=body, headers=APPLY, params=params)
    absent = clients["other-agent"].patch(f"{cl}/nowhere", content=body, headers=APPLY, params=params)
    assert there.status_code == absent.status_code == 404


def _pb(num: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (payloads here are shorter than 128 bytes)."""
    assert len(payload) < 128
    return bytes([num << 3 | 2, len(payload)]) + payload


def ssar_protobuf(**attrs: str) -> bytes:
    """A SelfSubjectAccessReview as kubectl's typed client encodes it."""
    numbers = {"namespace": 1, "verb": 2, "group": 3, "resource": 5, "subresource": 6, "name": 7}
    ra = b"".join(_pb(numbers[k], v.encode()) for k, v in attrs.items())
    type_meta = _pb(1, b"authorization.k8s.io/v1") + _pb(2, b"SelfSubjectAccessReview")
    return b"k8s\x00" + _pb(1, type_meta) + _pb(2, _pb(2, _pb(1, ra)))


SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
PROTOBUF = {"Content-Type": "application/vnd.kubernetes.protobuf"}


def test_can_i_reads_kubectls_protobuf_review(clients: dict[str, httpx.Client]) -> None:
    body = ssar_protobuf(namespace="team-a", verb="patch", group="fleetplane.io", resource="workloads")
    r = clients["team"].post(SSAR, content=body, headers=PROTOBUF)
    assert r.status_code == 201 and r.json()["status"]["allowed"] is True, r.text
    body = ssar_protobuf(verb="patch", group="fleetplane.io", resource="workloads", subresource="status")
    r = clients["team"].post(SSAR, content=body, headers=PROTOBUF)
    assert r.json()["status"]["allowed"] is False and "workloads/status" in r.json()["status"]["reason"]


@pytest.mark.parametrize(
    ("content", "headers", "field"),
    [
        (b"k8s\x00\x12\x05garbage", PROTOBUF, "protobuf"),
        (b"\x00\x01", PROTOBUF, "protobuf"),
        (ssar_protobuf(verb="get", resource="workloads", name="a\x00b"), PROTOBUF, "spec.resourceAttributes.name"),
        (b'{"spec": 5}', {"Content-Type": "application/json"}, "spec"),
        (b'{"spec": {}}', {"Content-Type": "application/json"}, "spec.resourceAttributes"),
        (b'{"spec": {"resourceAttributes": {"verb": 1}}}', {"Content-Type": "application/json"}, "verb"),
        (b'{"spec": {"resourceAttributes": {"verb": "get"}}}', {"Content-Type": "application/json"}, "resource"),
        (b'{"kind": "Pod", "spec": {}}', {"Content-Type": "application/json"}, "kind"),
        (b"[1, 2]", {"Content-Type": "application/json"}, "must be an object"),
    ],
)
def test_a_bad_review_request_gets_a_4xx_status_naming_what_is_wrong(
    clients: dict[str, httpx.Client], content: bytes, headers: dict[str, str], field: str
) -> None:
    r = clients["team"].post(SSAR, content=content, headers=headers)
    assert 400 <= r.status_code < 500 and r.json()["kind"] == "Status", r.text
    assert field in r.json()["message"]
