"""A store read cancelled part-way (what stopping the hub does to the watch poller and the
controller) gives its pooled connection back, on real Postgres.

The hub logged SQLAlchemy's ERROR "The garbage collector is trying to clean up non-checked-in
connection" on some shutdowns (tests/api/test_shutdown.py, about 1 run in 6 with 2 workers):
the poller was cancelled while `connect()` was still checking its connection out and setting
autocommit, a moment at which psycopg yields to the event loop when the loop has been busy for
5 ms or more. The test makes the loop that busy, then cancels a read after each number of loop
turns in turn, so one of them lands at that moment.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

import pytest
from sqlalchemy.pool import QueuePool

from hub.store.store import Store

BUSY_SECONDS = 0.01
"""How long the loop is kept busy before each read: above psycopg's 5 ms (MAX_BUSY_TIME), so
its next call yields to the loop once even when it need not wait for the server."""

LOOP_TURNS = 12
"""Cancel after 0 … LOOP_TURNS-1 turns of the loop: a read checks its (idle, pooled) connection
out in its first turn, and the last ones are cancelled while the query is in flight."""


async def _cancel_reads(store: Store) -> list[str]:
    pool = store.engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    leaks = []
    for turns in range(LOOP_TURNS):
        await store.poll_events(0)  # an idle connection in the pool: the next checkout is instant
        time.sleep(BUSY_SECONDS)  # blocks the loop on purpose, as a loaded machine does
        task = asyncio.create_task(store.poll_events(0))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if out := pool.checkedout():
            leaks.append(f"cancelled after {turns} loop turns: {out} connection(s) still checked out")
        del task
        gc.collect()
    return leaks


def test_a_read_cancelled_at_any_moment_returns_its_connection_to_the_pool(
    fresh_database: Callable[[], str], caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(fresh_database(), pool_size=1)

    async def main() -> list[str]:
        try:
            return await _cancel_reads(store)
        finally:
            await store.close()

    with caplog.at_level(logging.ERROR, logger="sqlalchemy.pool"):
        leaks = asyncio.run(main())
        gc.collect()
    assert leaks == [], "\n".join(leaks)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
