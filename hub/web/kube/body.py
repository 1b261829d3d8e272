"""Request bodies and write options: size limit, JSON/YAML decoding, dryRun, fieldManager."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from hub.errors import bad_request
from hub.registry.lifecycle import WriteOptions
from hub.web import inputs
from hub.web.context import hub_of


async def read_body(request: Request) -> bytes:
    """The body, or 413 when it is over the hub's limit (hub.web.inputs counts while streaming)."""
    return await inputs.read_body(request, hub_of(request).settings.max_body_bytes)


def parse_body(raw: bytes, content_type: str, what: str) -> Any:
    """JSON, or YAML for yaml content types (kubectl's apply-patch+yaml bodies are JSON, which is
    YAML), decoded and checked at the input boundary (hub.web.inputs)."""
    return inputs.decode(raw, content_type, what)


def dry_run(request: Request) -> bool:
    d = request.query_params.get("dryRun")
    if d and d != "All":
        raise bad_request(f'dryRun: unsupported value "{d}" (only "All")')
    return d == "All"


MAX_FIELD_MANAGER = 128
"""kube-apiserver's limit on a fieldManager name (apimachinery ValidateFieldManager)."""


def field_manager_param(request: Request) -> str:
    """?fieldManager= as sent ("" when absent): at most 128 printable characters, on every verb
    including server-side apply."""
    m = request.query_params.get("fieldManager") or ""
    if len(m) > MAX_FIELD_MANAGER:
        raise bad_request(f"fieldManager: must be at most {MAX_FIELD_MANAGER} characters, not {len(m)}")
    inputs.check_text(m, "fieldManager")
    if any(not ch.isprintable() for ch in m):
        raise bad_request("fieldManager: must contain only printable characters")
    return m


def manager(request: Request, default: str = "unknown") -> str:
    """The field manager: ?fieldManager=, else the client's User-Agent product (as kube-apiserver)."""
    if m := field_manager_param(request):
        return m
    ua = request.headers.get("user-agent", "")
    return ua.split("/")[0][:MAX_FIELD_MANAGER] or default


def write_options(request: Request, *, field_manager: str | None = None) -> WriteOptions:
    """The request's write options; the server's fieldValidation default is Warn."""
    return WriteOptions(
        field_validation=request.query_params.get("fieldValidation", "Warn"),
        manager=field_manager if field_manager is not None else manager(request),
        dry_run=dry_run(request),
    )
