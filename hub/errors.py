"""API errors as Kubernetes `Status` objects.

Every error the hub returns is one of these, so kubectl prints `Error from server (Reason): msg`.
`retryable` tells callers inside the hub whether trying again can help (kopf's
TemporaryError/PermanentError idea). These are the apimachinery `StatusError`s of this hub:
the registry raises them and the HTTP layer answers with their `status()`. The store raises
its own errors (hub.store.errors); `from_store_error` is the one place they become a Status.
"""

from __future__ import annotations

from typing import Any

from hub.store.errors import (
    AlreadyExistsError,
    InvalidContinueToken,
    ResourceVersionTooOld,
    StoreError,
    StoreRejected,
    StoreUnavailable,
)


class ApiError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        causes: list[dict[str, str]] | None = None,
        retryable: bool = False,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})
        if causes:
            self.details["causes"] = causes
        self.retryable = retryable
        self.retry_after_seconds = retry_after_seconds
        if retry_after_seconds is not None:
            self.details["retryAfterSeconds"] = retry_after_seconds

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with this Status (Retry-After for 429 and 503)."""
        return {"Retry-After": str(self.retry_after_seconds)} if self.retry_after_seconds is not None else {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(kind: str | None, group: str | None, name: str | None) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    return d


def qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified(plural, group)} "{name}" not found', details=_details(plural, group, name)
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(plural, group)} "{name}" already exists',
        details=_details(plural, group, name),
    )


def conflict(plural: str, group: str, name: str, why: str | None = None) -> ApiError:
    msg = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {msg}',
        details=_details(plural, group, name),
        retryable=True,
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message, retryable=True)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> ApiError:
    parts = "; ".join(f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes)
    return ApiError(
        422,
        "Invalid",
        f'{kind}.{group} "{name}" is invalid: {parts}' if group else f'{kind} "{name}" is invalid: {parts}',
        details=_details(kind, group, name),
        causes=causes,
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized: a valid bearer token is required")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media(message: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", message)


def unavailable(message: str, retry_after_seconds: int = 1) -> ApiError:
    """503: the hub cannot serve this now (its database is down); the client should retry."""
    return ApiError(503, "ServiceUnavailable", message, retryable=True, retry_after_seconds=retry_after_seconds)


def too_many_requests(message: str, retry_after_seconds: int = 1) -> ApiError:
    return ApiError(429, "TooManyRequests", message, retryable=True, retry_after_seconds=retry_after_seconds)


def internal_error(message: str = "an internal error occurred; it has been logged") -> ApiError:
    return ApiError(500, "InternalError", message)


def too_large(message: str) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", message)


def split_key(resource: str) -> tuple[str, str]:
    """Store key → (group, plural): 'fleetplane.io/workloads' → ('fleetplane.io', 'workloads')."""
    group, _, plural = resource.rpartition("/")
    return group, plural


def from_store_error(exc: StoreError) -> ApiError:
    """The Status for an error the store raised."""
    if isinstance(exc, AlreadyExistsError):
        group, plural = split_key(exc.resource)
        return already_exists(plural, group, exc.name)
    if isinstance(exc, ResourceVersionTooOld):
        return gone(str(exc))
    if isinstance(exc, InvalidContinueToken):
        # The decoder's own words (a base64 or JSON error) mean nothing to the client.
        return bad_request(
            "continue: invalid value: not a continue token this server issued (copy it whole from "
            "metadata.continue of the previous page, or list again without it)"
        )
    if isinstance(exc, StoreRejected):
        return bad_request(str(exc))
    if isinstance(exc, StoreUnavailable):
        return unavailable(str(exc))
    return ApiError(500, "InternalError", f"storage error: {exc}")


_HTTP_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
}


def http_status(code: int, detail: str, method: str, path: str) -> ApiError:
    """The Status for an error the web framework raised itself (no route matched, a method the
    route does not have), in kube-apiserver's words for the common ones."""
    shown = path if len(path) <= 200 else path[:197] + "..."
    if code == 404:
        return ApiError(404, "NotFound", f"the server could not find the requested resource ({shown})")
    if code == 405:
        return method_not_allowed(f"{method[:16]} is not supported on {shown}")
    return ApiError(code, _HTTP_REASONS.get(code, "Unknown" if code < 500 else "InternalError"), detail)
