"""JSON answers of the Kubernetes API: objects (with Warning headers) and Status errors."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from hub.errors import ApiError


def status_response(err: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(err.status(), status_code=err.code, headers={**err.headers(), **(headers or {})})


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> JSONResponse:
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join(f'299 - "{w}"' for w in warnings[:20])
    return JSONResponse(obj, status_code=status, headers=headers)
