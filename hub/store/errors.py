"""Errors the store raises. The store knows nothing of HTTP: the registry and the HTTP layer
map these to Kubernetes `Status` objects (hub.errors)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import exc as sa_exc


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class AlreadyExistsError(StoreError):
    """An insert found a live object with the same (resource, namespace, name)."""

    def __init__(self, resource: str, namespace: str, name: str) -> None:
        super().__init__(f"{resource} {namespace + '/' if namespace else ''}{name} already exists")
        self.resource, self.namespace, self.name = resource, namespace, name


class InvalidContinueToken(StoreError):
    """A list's continue token was not one this store handed out."""


class ResourceVersionTooOld(StoreError):
    """A watch asked to resume from a resourceVersion whose events were compacted away."""

    def __init__(self, from_rv: int, floor: int | None = None) -> None:
        msg = f"too old resource version: {from_rv}" + (f" ({floor})" if floor is not None else "")
        super().__init__(msg)
        self.from_rv, self.floor = from_rv, floor


class StoreUnavailable(StoreError):
    """The database cannot be reached (or the pool is exhausted): retry later (503)."""


class StoreRejected(StoreError):
    """The database refused a value the checks above it let through (a last line of defence: 400)."""


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Turn database driver errors into store errors, so no caller sees SQLAlchemy's."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, ConnectionError) as exc:
        raise StoreUnavailable(f"the database is unavailable ({type(exc).__name__})") from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable("the database connection was lost") from exc
        if isinstance(exc, sa_exc.DataError):
            raise StoreRejected(f"the database refused a value: {str(exc.orig).splitlines()[0][:200]}") from exc
        raise
