"""Leader election: one hub process per database runs the controllers.

A Postgres session-level advisory lock held on a dedicated connection: it is released when
the connection closes, so a crashed leader's lock frees itself and another replica takes
over within its retry period.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store.store import Store

CONTROLLERS_LOCK_KEY = 0x46504C41  # "FPLA"


class LeaderLock:
    """`acquire()` once; then `confirm()` before each round of work; `release()` at the end."""

    def __init__(self, store: Store, key: int = CONTROLLERS_LOCK_KEY) -> None:
        self.store = store
        self.key = key
        self._conn: AsyncConnection | None = None

    async def acquire(self) -> bool:
        """Try to take the lock; False if another process holds it."""
        conn = await self.store.engine.connect()
        try:
            got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})).scalar())
            await conn.commit()
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def confirm(self) -> None:
        """Raise if the lock's connection is gone (then the lock may be someone else's)."""
        if self._conn is None:
            raise RuntimeError("the leader lock is not held")
        await self._conn.execute(text("SELECT 1"))
        await self._conn.commit()

    async def release(self) -> None:
        """Unlock, then give the connection back. A session-level lock outlives `close()` on a
        pooled connection (close only returns it to the pool), so a connection that cannot be
        unlocked is invalidated: its session ends and Postgres drops the lock with it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            await conn.commit()
        except Exception:  # the database went away: make sure the session does too
            try:
                await conn.invalidate()
            except Exception:
                pass
        try:
            await conn.close()
        except Exception:  # already dead: its session, and the lock, are gone
            pass
