"""The dashboard at /ui in a real headless Chromium against a real hub with the demo fleet's
SIMULATED clusters (tests/ui/conftest.py): sign in, fleet totals, a workload's explanation, a
cluster going NotReady live, what-if, team scoping, a refused token, hostile strings, queues,
and /docs rendering offline.

Every cluster here is SIMULATED (the agent's in-memory backend); the page labels them so.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from fleetplane_testing.waiting import wait_until
from hub.web.ui.router import CONTENT_SECURITY_POLICY
from tests.ui.conftest import API, CANARY, DemoFleet, Tab

REPO = Path(__file__).resolve().parents[2]


def sign_in(tab: Tab, fleet: DemoFleet, token: str | None = None, page: str = "#/fleet") -> Any:
    p = tab.page
    p.goto(fleet.ui + page)
    p.fill("#token", fleet.hub.admin_token if token is None else token)
    p.click("#login-form button[type=submit]")
    p.wait_for_selector("#nav:not([hidden])")
    return p


def page_totals(p: Any) -> dict[tuple[str, str], tuple[int, int]]:
    """(model, capacity type) → (free, total) as the page's totals table shows them."""
    rows = p.eval_on_selector_all(
        "#totals-table tbody tr",
        "rows => rows.map(r => [r.dataset.model, r.dataset.capacity,"
        " r.querySelector('.free').textContent, r.querySelector('.total').textContent])",
    )
    return {(m, c): (int(f), int(t)) for m, c, f, t in rows}


def summary_totals(c: httpx.Client) -> tuple[dict[tuple[str, str], tuple[int, int]], dict[str, Any]]:
    """The hub's /v1/fleet/summary summed over regions, as the page promises to show it."""
    s = c.get("/v1/fleet/summary").json()
    by: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in s["rows"]:
        by[(r["model"], r["capacityType"])][0] += r["free"]
        by[(r["model"], r["capacityType"])][1] += r["total"]
    return {k: (v[0], v[1]) for k, v in by.items()}, s


def expect_totals_match_the_summary(p: Any, fleet: DemoFleet) -> dict[str, Any]:
    """The page's totals equal the hub's summary (retried: agents report capacity meanwhile)."""
    with fleet.client() as c:

        def same() -> dict[str, Any] | None:
            want, s = summary_totals(c)
            shown = page_totals(p)
            kpis = [p.text_content(sel) for sel in ("#total-free", "#total-gpus", "#ready-clusters")]
            ok = shown == want and kpis == [str(s["freeGpus"]), str(s["totalGpus"]), str(s["readyClusters"])]
            return s if ok and shown else None

        return wait_until("the page's totals to match /v1/fleet/summary", same, 20)


def wait_js(p: Any, expression: str, timeout: float = 10) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function evaluates
    its predicate with eval inside the page, which the dashboard's CSP rightly refuses.)"""
    wait_until(expression, lambda: p.evaluate(expression) is True, timeout, interval=0.05)


def csp_violations(tab: Tab) -> list[str]:
    return [e for e in tab.errors if "Content Security Policy" in e]


# ------------------------------------------------------------------ serving


def test_the_page_is_public_but_its_data_needs_a_token_and_every_answer_has_a_strict_policy(
    fleet: DemoFleet,
) -> None:
    with httpx.Client(base_url=fleet.hub.http_url) as anonymous:
        page = anonymous.get("/ui/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<script" in page.text and "<script>" not in page.text, "only external module scripts"
        script = anonymous.get("/ui/static/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        for r in (page, script, anonymous.get("/ui", follow_redirects=False)):
            assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert r.headers["x-content-type-options"] == "nosniff"
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
        assert anonymous.get("/ui/static/router.py").status_code == 404, "only the static files are served"
        assert anonymous.get("/v1/fleet/summary").status_code == 401


def test_a_bad_token_is_refused_with_the_hubs_message_and_nothing_is_shown(fleet: DemoFleet, tab: Tab) -> None:
    p = tab.page
    p.goto(fleet.ui)
    p.fill("#token", "fpa-this-is-not-a-token")
    p.click("#login-form button[type=submit]")
    error = p.wait_for_selector("#login-error:not([hidden])")
    assert "refused the token" in error.text_content() and "Unauthorized" in error.text_content()
    assert p.is_hidden("#nav") and p.query_selector("#clusters-table") is None
    assert p.evaluate("sessionStorage.getItem('fleetplane.token')") is None, "a refused token is not kept"


# ------------------------------------------------------------------ fleet


def test_an_admin_signs_in_and_the_fleet_totals_match_the_fleet_summary(fleet: DemoFleet, tab: Tab) -> None:
    p = sign_in(tab, fleet)
    assert "signed in as" in p.text_content("#who")
    p.wait_for_selector(f"#clusters-table tr[data-cluster='{CANARY}']")
    summary = expect_totals_match_the_summary(p, fleet)
    assert summary["readyClusters"] == 4
    # One row per GPU pool, each cluster labelled SIMULATED (the demo fleet's backend).
    with fleet.client() as c:
        clusters = c.get("/v1/clusters").json()["items"]
    pools = sum(len(cl["pools"]) for cl in clusters)
    rows = p.query_selector_all("#clusters-table tbody tr")
    assert len(rows) == pools
    assert all(r.query_selector(".badge.sim") is not None for r in rows)
    assert p.query_selector_all("svg.heat rect").__len__() == len(clusters)
    # Search narrows the table to one cluster's pools.
    p.fill("#fleet-search", "sim-us-west")
    wait_js(p, "document.querySelectorAll('#clusters-table tbody tr').length === 2")
    assert {r.get_attribute("data-cluster") for r in p.query_selector_all("#clusters-table tbody tr")} == {
        "sim-us-west-spot"
    }
    assert not tab.errors, tab.errors


def test_a_cluster_whose_agent_stops_turns_red_live_without_a_reload(fleet: DemoFleet, tab: Tab) -> None:
    p = sign_in(tab, fleet)
    row = f"#clusters-table tr[data-cluster='{CANARY}']"
    p.wait_for_selector(f"{row}[data-ready='true']")
    p.wait_for_selector("#live.on")
    p.evaluate("window.__noReload = true")  # gone if the page reloaded
    fleet.agents[CANARY].stop()
    with fleet.client() as c:
        wait_until(
            "the hub marks the canary NotReady",
            lambda: not next(x for x in c.get("/v1/clusters").json()["items"] if x["name"] == CANARY)["ready"],
            30,
        )
    p.wait_for_selector(f"{row}[data-ready='false'].not-ready", timeout=10_000)
    assert p.text_content(f"{row} .badge.bad") == "NotReady"
    assert p.evaluate("window.__noReload") is True, "the update came from the watch, not a reload"
    assert p.get_attribute(f"svg.heat rect[data-cluster='{CANARY}']", "data-ready") == "false"
    summary = expect_totals_match_the_summary(p, fleet)
    assert p.text_content("#not-ready-clusters") == str(summary["notReady"]["clusters"]) == "1"


# ------------------------------------------------------------------ workloads


def test_opening_a_workload_shows_its_explanation_with_the_chosen_cluster_marked(fleet: DemoFleet, tab: Tab) -> None:
    p = sign_in(tab, fleet, page="#/workloads")
    p.wait_for_selector("#workloads-table tr[data-workload='demo/llm-pretrain']")
    p.click("#workloads-table tr[data-workload='demo/llm-pretrain'] a")
    p.wait_for_selector("table.explanation")
    with fleet.client() as c:
        view = c.get("/v1/namespaces/demo/workloads/llm-pretrain").json()
    chosen = [x["name"] for x in view["placement"]["clusters"]]
    assert chosen == ["sim-us-east-reserved"]
    rows = p.query_selector_all("table.explanation tbody tr")
    assert [r.get_attribute("data-cluster") for r in rows] == [x["name"] for x in view["explanation"]["clusters"]]
    marked = p.query_selector_all("table.explanation tr.chosen")
    assert [r.get_attribute("data-cluster") for r in marked] == chosen
    assert marked[0].query_selector(".chosen-mark").text_content() == "chosen"
    # Plugin by plugin: a column per plugin the engine scored, the total in the last column.
    best = view["explanation"]["clusters"][0]
    headers = p.eval_on_selector_all("table.explanation thead th", "ths => ths.map(t => t.textContent)")
    assert [pl["name"] for pl in best["plugins"]] == headers[5:-1] and headers[-1] == "Score"
    assert p.text_content("table.explanation tr.chosen td.score") == f"{best['score']:.1f}"
    # Removed clusters say which filter removed them.
    removed = [x for x in view["explanation"]["clusters"] if not x["feasible"]]
    for x in removed:
        assert f"filter: {x['filter']}" in p.text_content(f"table.explanation tr[data-cluster='{x['name']}']")
    # Conditions and the Placed event (with its epoch) from the hub.
    detail = p.text_content("#workload-detail")
    assert "Placed" in detail and "(epoch 1)" in detail
    assert not tab.errors, tab.errors


def test_a_workloads_page_shows_its_epoch_history_and_a_spot_interruption_adds_a_row_live(
    fleet: DemoFleet, tab: Tab
) -> None:
    wl = json_of((REPO / "examples" / "workload.yaml").read_text())
    wl["metadata"] = {"name": "flaky", "namespace": "ui-epochs"}
    wl["spec"].update(gpu={"count": 2, "models": ["A100"]}, capacityTypes={"allowed": ["spot"]}, replicas=1)
    wl["spec"]["manifests"][0]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = 2
    with fleet.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": "ui-epochs"}}).status_code == 201
        r = c.post(f"{API}/namespaces/ui-epochs/workloads", json=wl)
        assert r.status_code == 201, r.text
        first = wait_until("flaky running", lambda: epoch_of(c, 1, running=True), 30)
    p = sign_in(tab, fleet, page="#/workloads/ui-epochs/flaky")
    p.wait_for_selector("#epoch-history tbody tr[data-epoch='1'].current")
    [row] = p.query_selector_all("#epoch-history tbody tr")
    [e1] = first["status"]["epochHistory"]
    assert e1["clusters"][0] in row.text_content() and "Placed" in row.text_content()
    assert "current" in row.text_content()
    p.evaluate("window.__noReload = true")
    with fleet.client() as c:  # the spot node under its copy is reclaimed (as its agent reports it)
        interrupt(c, "ui-epochs", "flaky", 1)
        second = wait_until("flaky re-placed in epoch 2", lambda: epoch_of(c, 2), 30)
    p.wait_for_selector("#epoch-history tbody tr[data-epoch='2'].current", timeout=10_000)
    assert p.evaluate("window.__noReload") is True, "the new row came from the watch, not a reload"
    want = list(reversed(second["status"]["epochHistory"]))  # the page shows the newest first
    rows = p.query_selector_all("#epoch-history tbody tr")
    assert [r.get_attribute("data-epoch") for r in rows] == [str(e["epoch"]) for e in want] == ["2", "1"]
    cells = [[td.text_content() for td in r.query_selector_all("th, td")] for r in rows]
    for shown, e in zip(cells, want, strict=True):
        assert shown[1] == ", ".join(e["clusters"]) and shown[3] == e["startedAt"]
        assert shown[2].startswith(e["reason"])
    assert cells[0][2].startswith("Evicted") and "spot interruption" in cells[0][2], "why epoch 2 started"
    assert cells[1][4] == want[1]["endedAt"] and cells[1][5].startswith("Evicted"), "why epoch 1 ended"
    assert cells[0][4] == "current"
    assert not tab.errors, tab.errors


def epoch_of(
    c: httpx.Client, epoch: int, ns: str = "ui-epochs", name: str = "flaky", running: bool = False
) -> dict[str, Any] | None:
    """The workload once placed in `epoch` (and, if `running`, its copy Running), else None."""
    w = c.get(f"{API}/namespaces/{ns}/workloads/{name}").json()
    st = w.get("status") or {}
    placed = (st.get("placement") or {}).get("epoch") == epoch and (st.get("placement") or {}).get("clusters")
    up = any(x.get("phase") == "Running" and x.get("epoch") == epoch for x in st.get("clusters") or [])
    return w if placed and (up or not running) else None


def interrupt(c: httpx.Client, ns: str, name: str, epoch: int) -> None:
    """Report a spot interruption on the workload's Assignment of `epoch`, as an agent does."""
    selector = {"fieldSelector": f"spec.workloadRef.name={name}"}
    [a] = [
        x
        for x in c.get(f"{API}/namespaces/{ns}/assignments", params=selector).json()["items"]
        if x["spec"]["epoch"] == epoch
    ]
    body = {"status": {"phase": "Failed", "reason": "Preempted", "message": "spot node reclaimed (SIMULATED)"}}
    r = c.patch(
        f"{API}/namespaces/{ns}/assignments/{a['metadata']['name']}/status",
        content=json.dumps(body),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text


def test_the_workload_list_filters_by_phase(fleet: DemoFleet, tab: Tab) -> None:
    p = sign_in(tab, fleet, page="#/workloads")
    p.wait_for_selector("#workloads-table tr[data-workload='demo/giant-gang']")
    p.select_option("#pick-phase", "Pending")
    wait_js(p, "document.querySelectorAll('#workloads-table tbody tr').length === 1")
    assert p.get_attribute("#workloads-table tbody tr", "data-workload") == "demo/giant-gang"


# ------------------------------------------------------------------ what-if


def test_what_if_shows_where_a_pasted_yaml_manifest_would_land_and_stores_nothing(fleet: DemoFleet, tab: Tab) -> None:
    manifest = (REPO / "examples" / "workload.yaml").read_text().replace("namespace: team-a", "namespace: demo")
    with fleet.client() as c:
        expected = c.post("/v1/whatif", json={"workloads": [json_of(manifest)]}).json()
    p = sign_in(tab, fleet, page="#/whatif")
    p.fill("#whatif-manifest", manifest)
    p.click("button:has-text('Run what-if')")
    decision = p.wait_for_selector("section.decision[data-workload='demo/llama-finetune']")
    want = expected["decisions"][0]
    assert decision.get_attribute("data-placed") == str(want["placed"]).lower()
    assert want["reason"] in decision.text_content()
    chosen = [r.get_attribute("data-cluster") for r in decision.query_selector_all("table.explanation tr.chosen")]
    assert chosen == [x["cluster"] for x in want["placements"]]
    with fleet.client() as c:  # nothing was submitted
        assert c.get(f"{API}/namespaces/demo/workloads/llama-finetune").status_code == 404
        selector = {"fieldSelector": "spec.workloadRef.name=llama-finetune"}
        assert c.get(f"{API}/namespaces/demo/assignments", params=selector).json()["items"] == []
    # A manifest the engine refuses gets the hub's message naming the field.
    p.fill("#whatif-manifest", manifest.replace("replicas: 1", "replicas: -1"))
    p.click("button:has-text('Run what-if')")
    error = p.wait_for_selector("#whatif-result .error")
    assert "replicas" in p.text_content("#whatif-result") and error.is_visible()


def json_of(yaml_text: str) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(yaml_text))


# ------------------------------------------------------------------ teams


def test_a_team_signed_in_with_its_kubeconfig_sees_only_its_namespace(fleet: DemoFleet, tab: Tab) -> None:
    token, kubeconfig = fleet.hub.team("alpha", "team-a")
    with fleet.client(token) as a:
        body = json_of((REPO / "examples" / "workload.yaml").read_text())
        r = a.post("/v1/namespaces/team-a/workloads", json=body)
        assert r.status_code == 201, r.text
    p = tab.page
    p.goto(fleet.ui + "#/workloads")
    p.set_input_files("#kubeconfig", str(kubeconfig))
    p.click("#login-form button[type=submit]")
    p.wait_for_selector("#workloads-table tr[data-workload='team-a/llama-finetune']")
    shown = [r.get_attribute("data-workload") for r in p.query_selector_all("#workloads-table tbody tr")]
    assert shown == ["team-a/llama-finetune"], "the demo namespace's workloads are not the team's"
    assert "team" in p.text_content("#who") or "alpha" in p.text_content("#who")
    # Another namespace's workload is "not found", as on the API.
    p.goto(fleet.ui + "#/workloads/demo/llm-pretrain")
    assert "not found" in p.wait_for_selector("#workload-detail .error").text_content()
    # Capacity is shared knowledge: the team sees the whole fleet.
    p.goto(fleet.ui + "#/fleet")
    p.wait_for_selector(f"#clusters-table tr[data-cluster='{CANARY}']")


# ------------------------------------------------------------------ hostile input


def test_hostile_strings_from_the_api_are_shown_as_text_never_run(fleet: DemoFleet, tab: Tab) -> None:
    # A tenant controls the names of unknown fields, which the hub names back in what-if's warnings.
    hostile = '<img src=x onerror="window.__pwned=1">'
    wl = json_of((REPO / "examples" / "workload.yaml").read_text())
    wl["metadata"]["namespace"] = "demo"
    wl["spec"][hostile] = 1
    with fleet.client() as c:
        warnings = c.post("/v1/whatif", json={"workloads": [wl]}).json()["warnings"]
    assert any(hostile in w for w in warnings), warnings
    p = sign_in(tab, fleet, page="#/whatif")
    p.fill("#whatif-manifest", json.dumps(wl))
    p.click("button:has-text('Run what-if')")
    p.wait_for_selector("#whatif-result .warn-text")
    assert hostile in p.text_content("#whatif-result"), "shown literally"
    assert p.query_selector("#whatif-result img") is None
    assert p.evaluate("window.__pwned") is None
    assert not csp_violations(tab), csp_violations(tab)


# ------------------------------------------------------------------ queues


def test_the_queues_page_shows_usage_against_quota_and_pending(fleet: DemoFleet, tab: Tab) -> None:
    queue = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Queue",
        "metadata": {"name": "ui-research"},
        "spec": {
            "namespaces": ["ui-research"],
            "resourceGroups": [{"flavors": [{"gpuModel": "A100", "capacityType": "spot", "nominalQuota": 8}]}],
        },
    }
    with fleet.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": "ui-research"}}).status_code == 201
        assert c.post(f"{API}/queues", json=queue).status_code == 201, "queue created"
        for i in range(2):
            wl = json_of((REPO / "examples" / "workload.yaml").read_text())
            wl["metadata"] = {"name": f"sweep-{i}", "namespace": "ui-research"}
            wl["spec"].update(
                queue="ui-research", gpu={"count": 8, "models": ["A100"]}, capacityTypes={"allowed": ["spot"]}
            )
            r = c.post(f"{API}/namespaces/ui-research/workloads", json=wl)
            assert r.status_code == 201, r.text
        st = wait_until(
            "the admission pass writes the queue's status",
            lambda: (q := c.get(f"{API}/queues/ui-research").json().get("status")) and q.get("pendingWorkloads") and q,
            30,
        )
    p = sign_in(tab, fleet, page="#/queues")
    section = p.wait_for_selector("section[data-queue='ui-research']")
    assert "8 / 8" in section.text_content(), "one 8-GPU sweep holds the whole quota"
    row = p.wait_for_selector("tr[data-queue='ui-research']")
    assert str(st["pendingWorkloads"]) in row.text_content()


# ------------------------------------------------------------------ /docs


def test_the_api_docs_render_offline_from_the_hubs_own_assets(fleet: DemoFleet, tab: Tab) -> None:
    p = tab.page
    hub_host = urlparse(fleet.hub.http_url).netloc
    offsite: list[str] = []

    def only_the_hub(route: Any) -> None:
        if urlparse(route.request.url).netloc == hub_host:
            route.continue_()
        else:  # no CDN: anything from elsewhere would fail on an offline machine
            offsite.append(route.request.url)
            route.abort()

    p.route("**/*", only_the_hub)
    p.goto(fleet.hub.http_url + "/docs")
    title = p.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "Fleetplane hub" in title.text_content()
    p.wait_for_selector(".opblock-tag-section")  # the operations rendered from /openapi.json
    assert not offsite, offsite
    # The dashboard, likewise, asks nothing of any other host.
    sign_in(tab, fleet)
    p.wait_for_selector("#clusters-table tbody tr")
    assert not offsite, offsite
    assert all(urlparse(u).netloc == hub_host or u.startswith("data:") for u in tab.requests)
