"""Errors that say whether to retry (after kopf's TemporaryError / PermanentError)."""

from __future__ import annotations


class AgentError(Exception):
    """Base of the agent's own errors."""


class TemporaryError(AgentError):
    """Worth retrying later: the hub or the spoke was unreachable, busy or conflicting."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class HubUnreachable(TemporaryError):
    """Nothing took the connection at the hub's address (refused: the hub is restarting, or the
    link is cut). Retry soon and at a steady pace: a refused connection costs the hub nothing,
    unlike a retry of a request it answered with an error."""


class PermanentError(AgentError):
    """Retrying the same input will fail the same way; report it and wait for a change."""

    def __init__(self, message: str, reason: str = "Invalid") -> None:
        super().__init__(message)
        self.reason = reason


class JoinRefused(PermanentError):
    """The hub refused the join token or the stored credential."""


class Expired(AgentError):
    """The hub answered 410 Gone: the watch's resourceVersion is too old; relist."""
