"""Token lifecycle against a real hub: join tokens expire, tokens are listed and revoked by their
public id, a re-join rotates the agent credential, /metrics needs a token, and the kubeconfig
`token create` writes carries the address the hub really serves.

The CLI is run where it is what the test is about (a `fleetplane` process costs seconds);
other tokens are minted with the same store function the CLI calls, on the hub's database."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import httpx
import yaml

from hub.store.store import Store
from hub.store.tokens import create_token, token_id
from tests.hubtest import HubProcess, Kubectl, wait_until

CLUSTERS = "/apis/fleetplane.io/v1alpha1/clusters"


def join(hub: HubProcess, token: str, cluster: str) -> httpx.Response:
    with httpx.Client(base_url=hub.http_url, timeout=30) as c:
        return c.post("/v1/clusters/join", json={"joinToken": token, "clusterName": cluster})


def join_token(hub: HubProcess, cluster: str, *extra: str) -> str:
    """A join token from the CLI (`fleetplane cluster join-token create`)."""
    return hub.cli("cluster", "join-token", "create", cluster, *extra).splitlines()[-1]


def mint(
    hub: HubProcess, kind: str, subject: str, namespaces: list[str] | None = None, ttl: float | None = None
) -> str:
    """A token minted by the store function the CLI uses, on the hub's database."""
    assert hub.database_url

    async def go() -> str:
        store = Store(hub.database_url or "", pool_size=1)
        try:
            return await create_token(store, kind, subject, namespaces, ttl_seconds=ttl)
        finally:
            await store.close()

    return asyncio.run(go())


def status_of(r: httpx.Response) -> dict[str, object]:
    body = r.json()
    assert body["kind"] == "Status", body
    assert body["code"] == r.status_code, body
    return dict(body)


def table(out: str | HubProcess) -> list[list[str]]:
    """`fleetplane token list` output (or run it on a hub), split on the header's column starts."""
    lines = (out if isinstance(out, str) else out.cli("token", "list")).splitlines()
    head = lines[0]
    starts = [i for i, ch in enumerate(head) if ch != " " and (i == 0 or head[i - 1] == " ")]
    # "LAST USED" is one column: merge the start of "USED" into it.
    starts = [s for s in starts if not head.startswith("USED", s)]
    rows = []
    for line in lines:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(cells)
    return rows


def test_an_expired_join_token_is_refused_with_a_401_status_saying_it_expired(hub: HubProcess) -> None:
    token = mint(hub, "join", "short-lived", ttl=1)
    time.sleep(1.5)
    r = join(hub, token, "short-lived")
    assert r.status_code == 401
    status = status_of(r)
    assert status["reason"] == "Unauthorized"
    assert "expired" in str(status["message"]) and "short-lived" in str(status["message"])
    with hub.client() as admin:
        assert admin.get(f"{CLUSTERS}/short-lived").status_code == 404, "a refused join registers nothing"


def test_a_join_token_expires_after_a_day_unless_given_a_ttl(hub: HubProcess) -> None:
    day, quarter = join_token(hub, "default-ttl"), join_token(hub, "quarter-ttl", "--ttl", "15m")
    rows = {r[0]: r for r in table(hub)}

    def lifetime(token: str) -> timedelta:
        row = rows[token_id(token)]
        created, expires = (datetime.fromisoformat(row[i].replace("Z", "+00:00")) for i in (4, 5))
        return expires - created

    assert timedelta(hours=23, minutes=59) <= lifetime(day) <= timedelta(hours=24, minutes=1)
    assert timedelta(minutes=14) <= lifetime(quarter) <= timedelta(minutes=16)
    assert join(hub, quarter, "quarter-ttl").status_code == 200


def test_a_bad_ttl_is_refused_by_the_cli(hub: HubProcess) -> None:
    for bad in ("soon", "400d"):
        try:
            hub.cli("cluster", "join-token", "create", "never", "--ttl", bad)
        except RuntimeError as e:
            assert "ttl" in str(e).lower() or "duration" in str(e).lower(), e
        else:
            raise AssertionError(f"--ttl {bad} was accepted")


def test_token_list_shows_each_token_by_id_kind_and_subject_aligned_and_never_the_secret(hub: HubProcess) -> None:
    team_token = mint(hub, "team", "listers", ["team-list"])
    agent_token = join(hub, mint(hub, "join", "listed"), "listed").json()["token"]
    out = hub.cli("token", "list")
    assert team_token not in out and agent_token not in out and hub.admin_token not in out
    rows = table(out)
    assert rows[0] == ["ID", "KIND", "SUBJECT", "NAMESPACES", "CREATED", "EXPIRES", "LAST USED"]
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id[token_id(team_token)][1:4] == ["team", "listers", "team-list"]
    assert by_id[token_id(agent_token)][1:3] == ["agent", "listed"]
    assert by_id[token_id(hub.admin_token)][1:3] == ["admin", "admin"]
    assert by_id[token_id(team_token)][5] == "never"
    assert by_id[token_id(team_token)][6] == "-", "never used yet"
    # a used join token is not a working token: only `--all` shows it, as "used"
    assert not any(r[1] == "join" and r[2] == "listed" for r in rows[1:])
    every = table(hub.cli("token", "list", "--all"))
    assert every[0][-1] == "STATE"
    assert any(r[1] == "join" and r[2] == "listed" and r[-1] == "used" for r in every[1:])


def test_last_use_of_a_token_is_recorded(hub: HubProcess) -> None:
    token = mint(hub, "team", "users", ["team-use"])
    with hub.client(token) as c:
        assert c.get(CLUSTERS).status_code == 200
    after = {r[0]: r for r in table(hub)}[token_id(token)]
    assert after[6] != "-"


def test_a_revoked_team_token_is_refused_within_the_auth_cache_ttl(hub: HubProcess) -> None:
    token = mint(hub, "team", "revoked", ["team-rev"])
    with hub.client(token) as c:
        assert c.get(CLUSTERS).status_code == 200  # cached by the hub now
        out = hub.cli("token", "revoke", token_id(token)[:8])
        assert token_id(token) in out and "revoked" in out
        revoked_at = time.monotonic()

        def refused() -> bool:
            return c.get(CLUSTERS).status_code == 401

        wait_until(refused, timeout=10, what="the revoked token is refused")
        assert time.monotonic() - revoked_at <= 5.0 + 1.5, "refused within auth_cache_seconds (5 s)"
    assert "already revoked" in hub.cli("token", "revoke", token_id(token))


def test_revoke_refuses_an_unknown_or_malformed_id(hub: HubProcess) -> None:
    for bad, says in (("ffffffffffff", "no token"), ("xyz!", "not a token id")):
        try:
            hub.cli("token", "revoke", bad)
        except RuntimeError as e:
            assert says in str(e), e
        else:
            raise AssertionError(f"revoke {bad} succeeded")


def test_rejoining_a_cluster_rotates_its_credential_the_old_one_is_refused_the_new_one_works(
    hub: HubProcess,
) -> None:
    first = join(hub, mint(hub, "join", "rotating"), "rotating")
    assert first.status_code == 200, first.text
    old = first.json()["token"]
    with hub.client(old) as c:
        assert c.get(f"{CLUSTERS}/rotating").status_code == 200  # the hub has it cached now
    second = join(hub, mint(hub, "join", "rotating"), "rotating")
    assert second.status_code == 200, second.text
    new = second.json()["token"]
    assert new != old
    with hub.client(old) as c:
        r = c.get(f"{CLUSTERS}/rotating")
        assert r.status_code == 401, "the previous credential is refused at once by the hub that rotated it"
        assert status_of(r)["reason"] == "Unauthorized"
    with hub.client(new) as c:
        assert c.get(f"{CLUSTERS}/rotating").status_code == 200


def test_metrics_need_an_admin_or_metrics_token(hub: HubProcess) -> None:
    team = mint(hub, "team", "curious", ["team-metrics"])
    metrics_token = hub.cli("token", "create-metrics", "prometheus").splitlines()[-1]
    with hub.client("") as anonymous:
        r = anonymous.get("/metrics")
        assert r.status_code == 401 and status_of(r)["reason"] == "Unauthorized"
    with hub.client(team) as c:
        r = c.get("/metrics")
        assert r.status_code == 403 and status_of(r)["reason"] == "Forbidden"
    with hub.client() as admin:
        r = admin.get("/metrics")
        assert r.status_code == 200 and "fleetplane_apiserver_requests_total" in r.text
    with hub.client(metrics_token) as scraper:
        assert scraper.get("/metrics").status_code == 200
        r = scraper.get(CLUSTERS)
        assert r.status_code == 403, "a metrics token reads metrics and nothing else"
        assert "metrics" in str(status_of(r)["message"])


def test_token_create_writes_the_address_the_hub_serves_into_the_kubeconfig(hub: HubProcess) -> None:
    kc = hub.data_dir / "team-real-port.kubeconfig"
    # No --server: the CLI must find the hub's real port (it is not the default 8443).
    hub.cli(
        "token",
        "create",
        "--team",
        "porters",
        "-n",
        "team-port",
        "--data-dir",
        str(hub.data_dir),
        "--kubeconfig",
        str(kc),
    )
    cfg = yaml.safe_load(kc.read_text())
    assert cfg["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{hub.port}"
    assert hub.port != 8443
    out = Kubectl(kc, hub.data_dir / "kubecache-port")("get", "workloads", "-n", "team-port")
    assert "No resources" in out or out == ""
