"""Errors the store raises. The store knows nothing of HTTP: the registry and the HTTP layer
map these to Kubernetes `Status` objects (hub.errors)."""

from __future__ import annotations


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
