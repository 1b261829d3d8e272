"""Request bodies and write options: size limit, JSON/YAML decoding, dryRun, fieldManager."""

from __future__ import annotations

import json
from typing import Any

import yaml
from starlette.requests import Request

from hub.errors import bad_request, too_large
from hub.registry.lifecycle import WriteOptions
from hub.web.context import hub_of


async def read_body(request: Request) -> bytes:
    """The body, or 413 when it is over the hub's limit (checked on Content-Length first)."""
    limit = hub_of(request).settings.max_body_bytes
    cl = request.headers.get("content-length")
    if cl and cl.isdigit() and int(cl) > limit:
        raise too_large(f"request body of {cl} bytes exceeds the limit of {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise too_large(f"request body of {len(body)} bytes exceeds the limit of {limit} bytes")
    return body


def parse_body(raw: bytes, content_type: str, what: str) -> Any:
    """JSON, or YAML for yaml content types (kubectl's apply-patch+yaml bodies are JSON, which is YAML)."""
    if not raw.strip():
        raise bad_request(f"{what}: request body is empty")
    ct = content_type.split(";")[0].strip().lower()
    try:
        if "yaml" in ct:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"{what}: request body is not valid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        raise bad_request(f"{what}: request body is not valid YAML: {exc}") from exc


def dry_run(request: Request) -> bool:
    d = request.query_params.get("dryRun")
    if d and d != "All":
        raise bad_request(f'dryRun: unsupported value "{d}" (only "All")')
    return d == "All"


def manager(request: Request, default: str = "unknown") -> str:
    """The field manager: ?fieldManager=, else the client's User-Agent product (as kube-apiserver)."""
    m = request.query_params.get("fieldManager") or ""
    if len(m) > 128:
        raise bad_request("fieldManager: must be at most 128 characters")
    if m:
        return m
    ua = request.headers.get("user-agent", "")
    return ua.split("/")[0] or default


def write_options(request: Request, *, field_manager: str | None = None) -> WriteOptions:
    """The request's write options; the server's fieldValidation default is Warn."""
    return WriteOptions(
        field_validation=request.query_params.get("fieldValidation", "Warn"),
        manager=field_manager if field_manager is not None else manager(request),
        dry_run=dry_run(request),
    )
