"""Store.reader (the one-statement reads' autocommit connection, taken from the pool past
SQLAlchemy's Connection) on real Postgres: a connection never goes back to the pool still in
autocommit — also when the read is cancelled at any moment or fails — so a later transaction
on it is a transaction; and the pool keeps no connection checked out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from hub.store.errors import StoreError
from hub.store.store import Store, _run

LOOP_TURNS = 12


async def _transaction_is_atomic(store: Store) -> bool:
    """A write in a transaction that is rolled back leaves nothing (false in autocommit)."""
    async with store.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        if raw.autocommit:
            return False
        await conn.execute(text("UPDATE store_meta SET value = value || 'x' WHERE key = 'compacted_rv'"))
        await conn.rollback()
    async with store.connect() as conn:
        v = (await conn.execute(text("SELECT value FROM store_meta WHERE key = 'compacted_rv'"))).scalar_one()
    return "x" not in str(v)


def test_reads_hand_back_transactional_connections(fresh_database: Callable[[], str]) -> None:
    store = Store(fresh_database(), pool_size=1)  # every read and transaction shares one connection
    pool = store.engine.sync_engine.pool
    assert isinstance(pool, QueuePool)

    async def main() -> list[str]:
        problems = []
        try:
            assert await store.current_rv() >= 0
            assert await store.get_json("namespaces", "", "nope") is None
            for turns in range(LOOP_TURNS):
                await store.poll_events(0)
                time.sleep(0.01)  # a busy loop: psycopg then yields even where it need not wait
                task = asyncio.create_task(store.poll_events(0))
                for _ in range(turns):
                    await asyncio.sleep(0)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                if pool.checkedout():
                    problems.append(f"cancelled after {turns} turns: a connection is still checked out")
                if not await _transaction_is_atomic(store):
                    problems.append(f"cancelled after {turns} turns: the next transaction ran in autocommit")
            # A statement that fails (not a lost connection) also hands back a clean connection.
            with pytest.raises(StoreError):
                async with store.reader() as raw:
                    await _run(raw, "SELECT 1 / 0")  # division_by_zero: a DataError
            if not await _transaction_is_atomic(store):
                problems.append("after a failed read the next transaction ran in autocommit")
            return problems
        finally:
            await store.close()

    assert asyncio.run(main()) == []
