"""JSON answers of the Kubernetes API: objects (with Warning headers) and Status errors."""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi.responses import JSONResponse

from hub.errors import ApiError

MAX_WARNINGS = 20
"""Warning headers on one response; kube-apiserver also caps them (its limit is by size)."""

MAX_WARNING_CHARS = 256
"""Longest warning text sent: kube-apiserver truncates each warning to 256 characters once a
response's warnings grow large. Warnings quote client input (unknown field names), so a
hostile body cannot turn them into huge headers."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def warning_header(text: str) -> str:
    """One RFC 7234 warning value as kube-apiserver writes it: `299 - "text"` with `"` and `\\`
    escaped (k8s.io/apimachinery util/net NewWarningHeader). kubectl only prints warnings it
    can parse, and an unescaped quote inside the text makes the whole header unparsable.

    Control characters (a field name may contain a newline) become spaces; the text is sent as
    UTF-8, as Go servers do (Starlette encodes header values as latin-1, hence the round trip)."""
    if len(text) > MAX_WARNING_CHARS:
        text = text[: MAX_WARNING_CHARS - 3] + "..."
    text = _CONTROL.sub(" ", text).replace("\\", "\\\\").replace('"', '\\"')
    return '299 - "' + text.encode("utf-8", "replace").decode("latin-1") + '"'


class FastJSONResponse(JSONResponse):
    """JSONResponse encoded by orjson: the same compact UTF-8 JSON (the same content; floats
    may be written with other, equally exact digits) several times faster than json.dumps.
    What orjson refuses (an integer beyond 64 bits, a key that is not a string) goes through
    JSONResponse's own encoder, so nothing that encoded before fails now."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return super().render(content)


def status_response(err: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return FastJSONResponse(err.status(), status_code=err.code, headers={**err.headers(), **(headers or {})})


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> JSONResponse:
    resp = FastJSONResponse(obj, status_code=status)
    for w in (warnings or [])[:MAX_WARNINGS]:
        resp.headers.append("Warning", warning_header(w))  # one header per warning, as kube-apiserver
    return resp
