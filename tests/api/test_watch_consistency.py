"""Watch semantics under concurrency: every resumed watcher sees exactly the committed history.

Writers run concurrently against TWO hub processes sharing one Postgres (as replicas would);
watchers on both hubs resume from random resourceVersions taken while the writers run.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import start_hub
from tests.hubtest import HubProcess, wait_until

NS = "watch"
WRITERS = 8
OPS_PER_WRITER = 30
WATCHERS = 6


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker-each", "2-workers-each"])
def hubs(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fresh_database,  # type: ignore[no-untyped-def]
) -> Iterator[tuple[HubProcess, HubProcess]]:
    """Two hubs on one database, each one process or each two API worker processes (then a
    client's requests spread over four processes, each with its own watch poller)."""
    workers: int = request.param
    url = fresh_database()
    a = start_hub(
        tmp_path_factory.mktemp("hub-a"),
        url,
        workers,
        FLEETPLANE_BOOKMARK_SECONDS="0.5",
        FLEETPLANE_CONTROLLERS="false",
    )
    # The second replica shares the database and the admin token.
    b_dir = tmp_path_factory.mktemp("hub-b")
    (b_dir / "admin.token").write_text(a.admin_token)
    b = start_hub(b_dir, url, workers, FLEETPLANE_BOOKMARK_SECONDS="0.5", FLEETPLANE_CONTROLLERS="false")
    with a.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
    yield a, b
    a.stop()
    b.stop()


def _dataset(name: str, size: float) -> dict:
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": name},
        "spec": {"sizeGiB": size, "locations": [{"site": "us-east-1"}]},
    }


BASE = f"/apis/fleetplane.io/v1alpha1/namespaces/{NS}/datasets"


async def _writer(client: httpx.AsyncClient, wid: int, history: list[tuple[int, str, str]], rng: random.Random) -> None:
    live: list[str] = []
    for i in range(OPS_PER_WRITER):
        op = rng.choice(["create", "create", "patch", "delete"]) if live else "create"
        if op == "create":
            name = f"w{wid}-{i}"
            r = await client.post(BASE, json=_dataset(name, i))
            assert r.status_code == 201, r.text
            live.append(name)
            history.append((int(r.json()["metadata"]["resourceVersion"]), "ADDED", name))
        elif op == "patch":
            name = rng.choice(live)
            r = await client.patch(
                f"{BASE}/{name}",
                content=json.dumps({"spec": {"sizeGiB": 1000 + i}}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            assert r.status_code == 200, r.text
            history.append((int(r.json()["metadata"]["resourceVersion"]), "MODIFIED", name))
        else:
            name = live.pop(rng.randrange(len(live)))
            r = await client.delete(f"{BASE}/{name}")
            assert r.status_code == 200, r.text
            history.append((int(r.json()["metadata"]["resourceVersion"]), "DELETED", name))


async def _watch(
    client: httpx.AsyncClient, from_rv: int, until_rv: asyncio.Future[int], seen: list[tuple[int, str, str]]
) -> None:
    params = {"watch": "true", "resourceVersion": str(from_rv), "allowWatchBookmarks": "true"}
    async with client.stream("GET", BASE, params=params, timeout=None) as resp:
        assert resp.status_code == 200, await resp.aread()
        async for line in resp.aiter_lines():
            if not line:
                continue
            ev = json.loads(line)
            rv = int(ev["object"]["metadata"]["resourceVersion"])
            if ev["type"] != "BOOKMARK":
                seen.append((rv, ev["type"], ev["object"]["metadata"]["name"]))
            if until_rv.done() and rv >= until_rv.result():
                return


def test_resumed_watchers_see_every_committed_change_once_in_order(hubs: tuple[HubProcess, HubProcess]) -> None:
    a, b = hubs

    async def scenario() -> None:
        headers = {"Authorization": f"Bearer {a.admin_token}"}
        ca, cb = (httpx.AsyncClient(base_url=h.http_url, headers=headers, timeout=30) for h in (a, b))
        start_rv = int((await ca.get(BASE)).json()["metadata"]["resourceVersion"])
        history: list[tuple[int, str, str]] = []
        rng = random.Random(7)
        until: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        watchers: list[tuple[int, list[tuple[int, str, str]], asyncio.Task[None]]] = []

        def add_watcher(from_rv: int) -> None:
            seen: list[tuple[int, str, str]] = []
            client = ca if len(watchers) % 2 == 0 else cb
            watchers.append((from_rv, seen, asyncio.create_task(_watch(client, from_rv, until, seen))))

        add_watcher(start_rv)
        writers = [
            asyncio.create_task(_writer(ca if w % 2 == 0 else cb, w, history, random.Random(w))) for w in range(WRITERS)
        ]
        while len(watchers) < WATCHERS:
            await asyncio.sleep(0.15)
            if history:
                add_watcher(rng.choice(history)[0])  # resume from an rv committed moments ago
        await asyncio.gather(*writers)
        committed = sorted(history)
        until.set_result(committed[-1][0])
        await asyncio.wait_for(asyncio.gather(*(t for _, _, t in watchers)), timeout=60)
        await ca.aclose()
        await cb.aclose()

        rvs = [h[0] for h in committed]
        assert rvs == list(range(start_rv + 1, start_rv + 1 + len(rvs))), "resourceVersions are dense and unique"
        for from_rv, seen, _ in watchers:
            expected = [h for h in committed if h[0] > from_rv]
            assert seen == expected, f"watcher from rv {from_rv}: gap, repeat or reorder"

    asyncio.run(scenario())


def test_watch_from_a_compacted_resource_version_answers_410_expired(hubs: tuple[HubProcess, HubProcess]) -> None:
    a, _ = hubs
    with a.client() as c:
        r = c.post(BASE, json=_dataset("before-compaction", 1))
        old_rv = int(r.json()["metadata"]["resourceVersion"])
        c.patch(
            f"{BASE}/before-compaction",
            content='{"spec":{"sizeGiB":2}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )

        async def compact() -> int:
            from hub.store.store import Store

            store = Store(a.database_url, pool_size=1)
            try:
                return await store.compact(upto_rv=old_rv + 1)
            finally:
                await store.close()

        floor = asyncio.run(compact())
        assert floor >= old_rv + 1
        r = c.get(BASE, params={"watch": "true", "resourceVersion": str(old_rv - 1)})
        assert r.status_code == 410
        assert r.json()["reason"] == "Expired" and r.json()["kind"] == "Status"
        # At the floor itself the watch is still answerable (nothing after it was dropped).
        with c.stream("GET", BASE, params={"watch": "true", "resourceVersion": str(floor), "timeoutSeconds": "1"}) as s:
            assert s.status_code == 200


def test_watch_sends_bookmarks_when_asked_and_initial_events_from_zero(hubs: tuple[HubProcess, HubProcess]) -> None:
    a, _ = hubs
    with a.client() as c:
        c.post(BASE, json=_dataset("bookmarked", 1))
        list_rv = int(c.get(BASE).json()["metadata"]["resourceVersion"])
        types: list[str] = []
        names: list[str] = []
        with c.stream(
            "GET",
            BASE,
            params={"watch": "true", "resourceVersion": "0", "allowWatchBookmarks": "true", "timeoutSeconds": "2"},
        ) as s:
            for line in s.iter_lines():
                if line:
                    ev = json.loads(line)
                    types.append(ev["type"])
                    if ev["type"] == "BOOKMARK":
                        assert int(ev["object"]["metadata"]["resourceVersion"]) >= list_rv
                    else:
                        names.append(ev["object"]["metadata"]["name"])
                if "BOOKMARK" in types:
                    break
        assert "bookmarked" in names and types[0] == "ADDED", "resourceVersion=0 starts with synthetic ADDED events"
        assert "BOOKMARK" in types


LONG_POLL = 60.0
"""Hub C's poll interval: far longer than any wait below, so only a wake-up can deliver in time."""


@pytest.fixture(scope="module")
def slow_poller(hubs: tuple[HubProcess, HubProcess], tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A third hub process on the same database whose timed poll would take a minute."""
    a, _ = hubs
    assert a.database_url is not None
    c_dir = tmp_path_factory.mktemp("hub-c")
    (c_dir / "admin.token").write_text(a.admin_token)
    c = start_hub(c_dir, a.database_url, FLEETPLANE_WATCH_POLL_SECONDS=str(LONG_POLL), FLEETPLANE_CONTROLLERS="false")
    yield c
    c.stop()


def _first_added(hub: HubProcess, from_rv: int, name: str, within: float) -> bool:
    """Whether a watch on `hub` from `from_rv` delivers ADDED for `name` within `within` s
    (the server ends the watch at timeoutSeconds, so a missing event ends the stream)."""
    params = {"watch": "true", "resourceVersion": str(from_rv), "timeoutSeconds": str(int(within))}
    with hub.client() as c, c.stream("GET", BASE, params=params, timeout=within + 30) as s:
        assert s.status_code == 200
        for line in s.iter_lines():
            if line:
                ev = json.loads(line)
                if ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == name:
                    return True
    return False


def _notify(database_url: str, rv: int) -> None:
    """What every hub process's write transaction sends at commit (hub.store.watch.CHANNEL)."""
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("SELECT pg_notify('fleetplane_events', %s)", (str(rv),))


def test_a_watcher_on_another_hub_process_gets_a_write_long_before_its_poll_interval(
    hubs: tuple[HubProcess, HubProcess], slow_poller: HubProcess
) -> None:
    a, _ = hubs
    with a.client() as c:
        rv = int(c.get(BASE).json()["metadata"]["resourceVersion"])
        done: list[bool] = []

        async def scenario() -> None:
            watching = asyncio.create_task(asyncio.to_thread(_first_added, slow_poller, rv, "cross-process", 20))
            await asyncio.sleep(1.0)  # the watch is open on hub C before the write on hub A
            assert c.post(BASE, json=_dataset("cross-process", 1)).status_code == 201
            done.append(await watching)

        asyncio.run(scenario())
    assert done == [True], f"hub C delivered nothing within 20 s although its poll interval is {LONG_POLL:.0f} s"


def test_the_watch_listen_connection_comes_back_after_the_database_drops_it(
    hubs: tuple[HubProcess, HubProcess], slow_poller: HubProcess
) -> None:
    import psycopg

    from hub.store.watch import LISTEN_APPLICATION

    a, _ = hubs
    assert a.database_url is not None
    url = a.database_url
    dsn = url.replace("postgresql+psycopg://", "postgresql://")

    def listeners() -> list[int]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (LISTEN_APPLICATION,)
            ).fetchall()
        return [r[0] for r in rows]

    before = listeners()
    assert len(before) >= 3, "each of the three hub processes keeps one LISTEN connection"
    with psycopg.connect(dsn, autocommit=True) as conn:
        for pid in before:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(lambda: len(set(listeners()) - set(before)) >= 3, timeout=30, what="LISTEN connections back")

    with a.client() as c:
        rv = int(c.get(BASE).json()["metadata"]["resourceVersion"])
        done: list[bool] = []

        async def scenario() -> None:
            watching = asyncio.create_task(asyncio.to_thread(_first_added, slow_poller, rv, "after-blip", 20))
            await asyncio.sleep(1.0)
            r = c.post(BASE, json=_dataset("after-blip", 1))
            assert r.status_code == 201
            _notify(url, int(r.json()["metadata"]["resourceVersion"]))
            done.append(await watching)

        asyncio.run(scenario())
    assert done == [True], "hub C's reconnected LISTEN connection did not wake its poller"
