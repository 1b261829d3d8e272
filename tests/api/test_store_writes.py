"""The store writes a transaction in ONE statement (hub.store.store.Store._apply), on real Postgres.

What a user relies on: a transaction is all or nothing (a create whose name is taken stores
nothing of the transaction it is in, and the error names that object), resourceVersions are
dense and in staging order, several writes to one object are one row write and one event,
and every commit wakes other hub processes through NOTIFY on `fleetplane_events` — with its
top resourceVersion, and never for a transaction that was rolled back.

Each test runs both ways a transaction can start: a real transaction from the first
statement, and `begin_on_lock` (autocommit until the first locking read, what creates use).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from hub.store.errors import AlreadyExistsError
from hub.store.store import NOTIFY_CHANNEL, Store, Tx

Obj = dict[str, Any]
R = "fleetplane.io/datasets"


@pytest.fixture(scope="module")
def url(fresh_database: Callable[[], str]) -> str:
    return fresh_database()


@pytest.fixture(params=[False, True], ids=["transaction", "begin-on-lock"])
def begin_on_lock(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture()
def store(url: str) -> Iterator[Store]:
    s = Store(url, pool_size=2)
    yield s
    asyncio.run(s.close())


def obj(name: str, ns: str = "team-a", **spec: Any) -> Obj:
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def state(store: Store) -> tuple[int, list[tuple[str, str, int, str]], int]:
    """(counter, every stored object as (namespace, name, rv, its JSON resourceVersion), events)."""
    async with store.connect() as conn:
        counter = (await conn.execute(text("SELECT rv FROM rv_counter"))).scalar_one()
        rows = (
            await conn.execute(
                text("SELECT namespace, name, rv, data->'metadata'->>'resourceVersion' FROM objects ORDER BY 1, 2")
            )
        ).all()
        events = (await conn.execute(text("SELECT count(*) FROM events"))).scalar_one()
    return int(counter), [(r[0], r[1], r[2], r[3]) for r in rows], int(events)


def test_a_create_whose_name_is_taken_stores_nothing_of_its_transaction(store: Store, begin_on_lock: bool) -> None:
    suffix = "lock" if begin_on_lock else "tx"

    async def seed(tx: Tx) -> None:
        tx.create(R, obj(f"taken-{suffix}"))
        tx.create(R, obj(f"updated-{suffix}", size=1))

    run(store.transact(seed))
    before = run(state(store))

    async def both(tx: Tx) -> None:
        old = await tx.get(R, "team-a", f"updated-{suffix}")  # locked: begins the transaction here
        assert old is not None
        old["spec"] = {"size": 2}
        tx.update(R, old)
        tx.create(R, obj(f"new-{suffix}"))
        tx.create(R, obj(f"taken-{suffix}"))  # taken: the whole transaction must go

    async def creates_only(tx: Tx) -> None:  # no locking read: one autocommit statement
        tx.create(R, obj(f"new-{suffix}"))
        tx.create(R, obj(f"taken-{suffix}"))

    for fn in (both, creates_only):
        with pytest.raises(AlreadyExistsError) as err:
            run(store.transact(fn, begin_on_lock=begin_on_lock))
        assert (err.value.resource, err.value.namespace, err.value.name) == (R, "team-a", f"taken-{suffix}")
        assert f"taken-{suffix} already exists" in str(err.value)
        assert run(state(store)) == before, "a rejected transaction changed what is stored"

    # The connection is usable again and the counter was given back: the next write gets the next rv.
    async def ok(tx: Tx) -> None:
        tx.create(R, obj(f"after-{suffix}"))

    run(store.transact(ok, begin_on_lock=begin_on_lock))
    counter, rows, events = run(state(store))
    assert counter == before[0] + 1 and events == before[2] + 1
    assert (("team-a", f"after-{suffix}", counter, str(counter))) in rows


def test_one_transaction_gets_dense_resource_versions_in_staging_order(store: Store, begin_on_lock: bool) -> None:
    p = "dense-lock" if begin_on_lock else "dense-tx"
    counter0 = run(state(store))[0]
    out: list[Obj] = []

    async def three(tx: Tx) -> None:
        out.extend(tx.create(R, obj(f"{p}-{i}")) for i in range(3))

    run(store.transact(three, begin_on_lock=begin_on_lock))
    assert [o["metadata"]["resourceVersion"] for o in out] == [str(counter0 + i) for i in (1, 2, 3)]
    _, rows, _ = run(state(store))
    mine = [r for r in rows if r[1].startswith(p)]
    # The row's rv column and the stored JSON's resourceVersion agree, and match what was returned.
    assert mine == [("team-a", f"{p}-{i}", counter0 + i + 1, str(counter0 + i + 1)) for i in range(3)]

    async def events() -> list[tuple[int, str, str, str]]:
        async with store.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT rv, name, type, data->'metadata'->>'resourceVersion' FROM events WHERE rv > :a ORDER BY rv"
                ),
                {"a": counter0},
            )
            return [(r[0], r[1], r[2], r[3]) for r in rows]

    assert run(events()) == [(counter0 + i + 1, f"{p}-{i}", "ADDED", str(counter0 + i + 1)) for i in range(3)]


def test_writes_to_one_object_in_one_transaction_are_one_row_write_and_one_event(
    store: Store, begin_on_lock: bool
) -> None:
    name = "coalesced-lock" if begin_on_lock else "coalesced-tx"
    counter0, _, events0 = run(state(store))

    async def create_then_update(tx: Tx) -> None:
        o = tx.create(R, obj(name, size=1))
        o["spec"] = {"size": 5}
        tx.update(R, o)

    run(store.transact(create_then_update, begin_on_lock=begin_on_lock))
    assert (run(store.get(R, "team-a", name)) or {}).get("spec") == {"size": 5}

    async def update_then_delete(tx: Tx) -> None:
        o = await tx.get(R, "team-a", name)
        assert o is not None
        o["spec"] = {"size": 6}
        tx.update(R, o)
        tx.delete(R, o)

    run(store.transact(update_then_delete, begin_on_lock=begin_on_lock))
    assert run(store.get(R, "team-a", name)) is None
    counter, _, events = run(state(store))
    assert (counter - counter0, events - events0) == (2, 2)  # ADDED (final state), then DELETED

    async def kinds() -> list[tuple[str, Any, Any]]:
        async with store.connect() as conn:
            rows = await conn.execute(
                text("SELECT type, data->'spec'->'size', prev FROM events WHERE rv > :a ORDER BY rv"), {"a": counter0}
            )
            return [(r[0], r[1], r[2]) for r in rows]

    added, deleted = run(kinds())
    assert added == ("ADDED", 5, None)
    assert deleted[0] == "DELETED" and deleted[2]["metadata"]["name"] == name  # the previous version's projection


def test_every_commit_notifies_its_top_resource_version_and_a_rollback_notifies_nothing(
    store: Store, url: str, begin_on_lock: bool
) -> None:
    p = "notify-lock" if begin_on_lock else "notify-tx"
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")

        async def two(tx: Tx) -> None:
            tx.create(R, obj(f"{p}-a"))
            tx.create(R, obj(f"{p}-b"))

        run(store.transact(two, begin_on_lock=begin_on_lock))
        top = run(state(store))[0]

        async def fails(tx: Tx) -> None:
            tx.create(R, obj(f"{p}-c"))
            tx.create(R, obj(f"{p}-a"))  # taken

        with pytest.raises(AlreadyExistsError):
            run(store.transact(fails, begin_on_lock=begin_on_lock))
        got = [(n.channel, n.payload) for n in listener.notifies(timeout=1.0)]
    assert got == [(NOTIFY_CHANNEL, str(top))]


def test_a_locking_transaction_that_writes_megabytes_commits(store: Store, begin_on_lock: bool) -> None:
    """A namespace delete that cascades over thousands of objects writes megabytes in one locking
    transaction. Sent pipelined with its COMMIT, a statement of ~1.5 MB or more could hang forever
    (psycopg pipeline mode; found loading bench_fleet); above PIPELINE_MAX_BYTES it is sent alone."""
    p = "big-lock" if begin_on_lock else "big-tx"
    payload = "x" * 200_000
    created: list[Obj] = []

    async def seed(tx: Tx) -> None:
        created.append(tx.create(R, obj(f"{p}-anchor")))

    run(store.transact(seed, begin_on_lock=begin_on_lock))

    async def big(tx: Tx) -> None:
        anchor = await tx.get(R, "team-a", f"{p}-anchor")  # locked: a real transaction from here
        assert anchor is not None
        tx.update(R, {**anchor, "spec": {"blob": payload}})
        created.extend(tx.create(R, obj(f"{p}-{i}", blob=payload)) for i in range(15))  # ~3 MB in all

    run(asyncio.wait_for(store.transact(big, begin_on_lock=begin_on_lock), 60))
    _, rows, _ = run(state(store))
    assert len([r for r in rows if r[1].startswith(f"{p}-")]) == 16
