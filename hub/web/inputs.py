"""The input boundary: everything a client sends is decoded and checked here, once.

Bodies: at most `max_body_bytes` on the wire (counted while streaming, whatever
Content-Length says), then decoded with limits — JSON without NaN/Infinity, integers within
int64, finite floats; YAML without anchors/aliases (no "billion laughs"), without explicit
tags, with timestamps kept as strings (as kube-apiserver's YAML→JSON does) — and walked
once: nesting depth, node count, string keys, no NUL and no lone surrogates anywhere (Postgres
refuses both). Query integers are plain ASCII digits of bounded length. Path segments are
checked the same way. Every rejection is a 400 `Status` that says what was wrong and where.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml
from starlette.requests import ClientDisconnect, Request

from hub.errors import bad_request, too_large

MAX_DEPTH = 64
"""Deepest nesting of a decoded body. Kubernetes objects nest about 15 levels (a pod template in
a Job in a manifest in an Assignment); 64 leaves room and stops recursion bombs early."""

MAX_NODES = 200_000
"""Most values (objects, arrays, scalars) one decoded body may hold: bounds memory and CPU per
request independently of how compact the encoding was."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""Integers are int64 on the Kubernetes wire; larger ones are refused, not rounded."""

FLOAT_MAX = 1e300
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]{1,18}")


# ------------------------------------------------------------------ body bytes


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as more than `limit` bytes arrive (chunked or not)."""
    cl = request.headers.get("content-length")
    if cl is not None:
        if not _DIGITS.fullmatch(cl.strip()[:18]) or len(cl.strip()) > 18:
            raise bad_request("Content-Length: must be a non-negative integer")
        if int(cl) > limit:
            raise too_large(f"request body of {cl} bytes exceeds the limit of {limit} bytes")
    cached = getattr(request, "_body", None)
    if isinstance(cached, bytes):
        return cached
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise bad_request("the client closed the connection before sending the whole body") from None
    body = b"".join(chunks)
    request._body = body  # starlette's cache: FastAPI and request.json() read it from here
    return body


# ------------------------------------------------------------------ decoding


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 19:
        raise ValueError(f"integer {text[:24]}… is out of range (int64)")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"integer {text} is out of range (int64)")
    return value


def _parse_float(text: str) -> float:
    if len(text) > 64:
        raise ValueError(f"number {text[:24]}… is too long")
    value = float(text)
    if not math.isfinite(value) or abs(value) > FLOAT_MAX:
        raise ValueError(f"number {text} is out of range")
    return value


class _JsonLikeLoader(yaml.SafeLoader):
    """YAML limited to what JSON can say: no anchors or aliases, no explicit tags, timestamps
    and other non-JSON scalars as strings."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not accepted (use plain values)", event.start_mark
            )
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "YAML anchors are not accepted (use plain values)", event.start_mark
            )
        tag = getattr(event, "tag", None)
        if tag not in (None, "!"):  # an explicit tag (!!binary, !!python/…, !custom)
            raise yaml.constructor.ConstructorError(
                None, None, f"YAML tags are not accepted (found {tag})", event.start_mark
            )
        return super().compose_node(parent, index)


# Keep only the JSON-compatible implicit types (null, bool, int, float); everything else —
# timestamps, "=" values, base64 — stays a string.
_JsonLikeLoader.yaml_implicit_resolvers = {
    k: [
        (tag, rx)
        for tag, rx in v
        if tag
        in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def decode(raw: bytes, content_type: str, what: str) -> Any:
    """JSON, or YAML for yaml content types, decoded with the limits above and checked."""
    if not raw.strip():
        raise bad_request(f"{what}: request body is empty")
    ct = content_type.split(";")[0].strip().lower()
    try:
        if "yaml" in ct:
            doc = yaml.load(raw, Loader=_JsonLikeLoader)
        else:
            doc = json.loads(raw, parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float)
    except RecursionError:
        raise bad_request(f"{what}: request body is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"{what}: request body is not valid JSON: {exc}") from None
    except ValueError as exc:
        raise bad_request(f"{what}: request body is not valid: {exc}") from None
    except yaml.YAMLError as exc:
        raise bad_request(f"{what}: request body is not valid YAML: {exc}") from None
    check_document(doc, what)
    return doc


def _path(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + p)
    return out or "(root)"


def check_document(doc: Any, what: str) -> None:
    """Depth, node count, key types, string contents and number ranges of a decoded document.

    Iterative (no recursion), so a hostile document cannot exhaust the stack here."""
    nodes = 0
    stack: list[tuple[Any, list[str | int]]] = [(doc, [])]
    while stack:
        value, where = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise bad_request(f"{what}: request body has more than {MAX_NODES} values")
        if len(where) > MAX_DEPTH:
            raise bad_request(
                f"{what}: request body is nested too deeply (at most {MAX_DEPTH} levels) at {_path(where[:8])}…"
            )
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    raise bad_request(f"{what}: {_path(where)}: object keys must be strings, not {k!r:.40}")
                if _BAD_CHARS.search(k):
                    raise bad_request(
                        f"{what}: {_path(where)}: a key contains a NUL character or an unpaired surrogate"
                    )
                stack.append((v, [*where, k]))
        elif isinstance(value, list):
            stack.extend((v, [*where, i]) for i, v in enumerate(value))
        elif isinstance(value, str):
            if _BAD_CHARS.search(value):
                raise bad_request(
                    f"{what}: {_path(where)}: contains a NUL character or an unpaired surrogate, which cannot be stored"
                )
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise bad_request(f"{what}: {_path(where)}: integer out of range (int64)")
        elif isinstance(value, float):
            if not math.isfinite(value) or abs(value) > FLOAT_MAX:
                raise bad_request(f"{what}: {_path(where)}: number out of range")
        else:
            raise bad_request(f"{what}: {_path(where)}: unsupported value of type {type(value).__name__}")


# ------------------------------------------------------------------ query and path


def query_int(request: Request, name: str, *, minimum: int = 0) -> int | None:
    """A query parameter that must be a plain non-negative integer (ASCII digits), or None."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not _DIGITS.fullmatch(raw):
        raise bad_request(f'{name}: invalid value "{raw[:40]}": must be an integer of at most 18 digits')
    value = int(raw)
    if value < minimum:
        raise bad_request(f"{name}: must be at least {minimum}")
    return value


def check_text(value: str, what: str, *, max_len: int = 1024) -> str:
    """A string from a path, query or token: bounded, no NUL, no unpaired surrogate."""
    if len(value) > max_len:
        raise bad_request(f"{what}: longer than {max_len} characters")
    if _BAD_CHARS.search(value):
        raise bad_request(f"{what}: contains a NUL character or an unpaired surrogate")
    return value
