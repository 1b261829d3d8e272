"""What the HTTP handlers need from the running hub, set on `app.state.hub` by hub.server."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from hub.registry.access import Subject
from hub.registry.lifecycle import Registry
from hub.settings import Settings
from hub.store.store import Store
from hub.web.authn import Authenticator


@dataclass
class HubContext:
    settings: Settings
    registry: Registry
    authenticator: Authenticator
    store: Store  # for /readyz and the join endpoint's tokens only; objects go through the registry
    ready: bool = False


def hub_of(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.hub
    return ctx


def subject_of(request: Request) -> Subject:
    """The caller, set by the authentication middleware (hub.web.authn)."""
    subject: Subject = request.state.subject
    return subject
