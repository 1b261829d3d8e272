"""The input boundary: everything a client sends is decoded and checked here, once.

Bodies: at most `max_body_bytes` on the wire (counted while streaming, whatever
Content-Length says), then decoded with limits — JSON (also for a YAML content type when the
body looks like JSON, as kubectl sends it) with NaN/Infinity, integers beyond int64 and
overlong numbers kept as markers that the walk refuses naming their field; YAML without
anchors/aliases (no "billion laughs"), without explicit tags, with timestamps kept as strings
(as kube-apiserver's YAML→JSON does), with its own size and value budget — and walked once:
nesting depth, node count, string keys, no NUL and no lone surrogates anywhere (Postgres
refuses both). Query parameters and path segments: bounded, no NUL; integers are plain ASCII
digits of bounded length, booleans true/false. Every rejection is a 400 (413 for size)
`Status` that says what was wrong and where.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml
from starlette.requests import ClientDisconnect, Request

from hub.errors import ApiError, bad_request, too_large

MAX_DEPTH = 64
"""Deepest nesting of a decoded body. Kubernetes objects nest about 15 levels (a pod template in
a Job in a manifest in an Assignment); 64 leaves room and stops recursion bombs early."""

MAX_NODES = 200_000
"""Most values (objects, arrays, scalars) one decoded body may hold: bounds memory and CPU per
request independently of how compact the encoding was."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""Integers are int64 on the Kubernetes wire; larger ones are refused, not rounded."""

FLOAT_MAX = 1e300
_MISSING: Any = object()
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


class _BadNumber:
    """A number the body spells but the hub will not hold (NaN, Infinity, beyond int64, a
    5,000-digit fraction). The JSON parser returns it in place, so that `check_document` can
    refuse it naming the field it was in; it never gets past that check."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _parse_constant(name: str) -> _BadNumber:
    return _BadNumber(f"{name} is not a JSON number")


def _parse_int(text: str) -> int | _BadNumber:
    if len(text.lstrip("-")) > 19:  # before int(): converting thousands of digits costs CPU
        return _BadNumber(f"integer {text[:24]}… is out of range (int64)")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        return _BadNumber(f"integer {text} is out of range (int64)")
    return value


def _parse_float(text: str) -> float | _BadNumber:
    if len(text) > 64:
        return _BadNumber(f"number {text[:24]}… is too long")
    value = float(text)
    if not math.isfinite(value) or abs(value) > FLOAT_MAX:
        return _BadNumber(f"number {text} is out of range")
    return value


MAX_YAML_BYTES = 128 * 1024
"""Largest body parsed as YAML proper. YAML is parsed by PyYAML's pure-Python loader (that is
what lets the hub refuse aliases, tags and deep nesting while composing, before anything is
built), which is some fifty times slower than JSON. kubectl sends JSON even with YAML content
types, and a JSON-looking body is parsed as JSON whatever its content type, so this only bounds
the cost of hand-written YAML. Parsing runs on the event loop, so this is kept small: about
0.4 s at worst on this project's 2-core machines (512 KiB measured 1.2 s and stalled watches
and /readyz); a manifest bigger than this can be sent as JSON."""

MAX_YAML_NODES = 10_000
"""Most values one YAML body may hold, counted while it is composed (so a large document is
refused before the parser has done all its work): well under a second of parsing, and fifty
times what a real manifest holds."""


class _JsonLikeLoader(yaml.SafeLoader):
    """YAML limited to what JSON can say: no anchors or aliases, no explicit tags, timestamps
    and other non-JSON scalars as strings, at most MAX_YAML_NODES values."""

    nodes = 0
    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            raise yaml.constructor.ConstructorError(
                None, None, f"a YAML body may hold at most {MAX_YAML_NODES} values", self.peek_event().start_mark
            )
        if self.depth >= MAX_DEPTH:
            raise RecursionError  # answered as "nested too deeply", like JSON
        self.depth += 1
        try:
            return self._checked_compose(parent, index)
        finally:
            self.depth -= 1

    def _checked_compose(self, parent: Any, index: Any) -> Any:
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
        doc = _MISSING
        if "yaml" not in ct or raw.lstrip()[:1] in (b"{", b"["):
            try:
                doc = json.loads(raw, parse_constant=_parse_constant, parse_int=_parse_int, parse_float=_parse_float)
            except json.JSONDecodeError:
                if "yaml" not in ct:
                    raise  # flow-style YAML ({a: 1}) is not JSON: parse it as YAML below
        if doc is _MISSING:
            if len(raw) > MAX_YAML_BYTES:
                raise too_large(
                    f"{what}: a YAML body may be at most {MAX_YAML_BYTES} bytes (this one is {len(raw)}); "
                    "send JSON for larger objects"
                )
            doc = yaml.load(raw, Loader=_JsonLikeLoader)
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


Where = tuple[Any, str | int] | None
"""A value's place in a document, as a linked list (parent, key): one small tuple per
container, none per scalar, so checking a 200,000-value body allocates little."""


def _path(where: Where) -> str:
    parts: list[str | int] = []
    while where is not None:
        where, key = where
        parts.append(key)
    out = ""
    for p in reversed(parts):
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + p)
    return out or "(root)"


def _scalar_problem(value: Any) -> str | None:
    """What is wrong with a scalar of a decoded body, or None."""
    if isinstance(value, str):
        if _BAD_CHARS.search(value):
            return "contains a NUL character or an unpaired surrogate, which cannot be stored"
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return "integer out of range (int64)"
    elif isinstance(value, float):
        if not math.isfinite(value) or abs(value) > FLOAT_MAX:
            return f"number {value} is out of range"
    elif isinstance(value, _BadNumber):
        return value.problem
    else:
        return f"unsupported value of type {type(value).__name__}"
    return None


def check_document(doc: Any, what: str) -> None:
    """Depth, node count, key types, string contents and number ranges of a decoded document.

    Iterative (no recursion), so a hostile document cannot exhaust the stack here."""
    nodes = 0
    stack: list[tuple[Any, Where, int]] = [(doc, None, 0)]

    def too_deep(where: Where) -> ApiError:
        shown = _path(where)
        return bad_request(
            f"{what}: request body is nested too deeply (at most {MAX_DEPTH} levels) at {shown[:80]}"
            + ("…" if len(shown) > 80 else "")
        )

    while stack:
        value, where, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise too_deep(where)
        items: Any
        if isinstance(value, dict):
            items = value.items()
            for k in value:
                if not isinstance(k, str):
                    raise bad_request(f"{what}: {_path(where)}: object keys must be strings, not {k!r:.40}")
                if _BAD_CHARS.search(k):
                    raise bad_request(
                        f"{what}: {_path(where)}: a key contains a NUL character or an unpaired surrogate"
                    )
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            if (problem := _scalar_problem(value)) is not None:
                raise bad_request(f"{what}: {_path(where)}: {problem}")
            continue
        for key, v in items:
            if isinstance(v, dict | list):
                stack.append((v, (where, key), depth + 1))
                continue
            nodes += 1
            if nodes > MAX_NODES:
                raise bad_request(f"{what}: request body has more than {MAX_NODES} values")
            if depth + 1 > MAX_DEPTH:
                raise too_deep((where, key))
            if (problem := _scalar_problem(v)) is not None:
                raise bad_request(f"{what}: {_path((where, key))}: {problem}")
        if nodes > MAX_NODES:
            raise bad_request(f"{what}: request body has more than {MAX_NODES} values")


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


def query_bool(request: Request, name: str) -> bool:
    """A boolean query parameter: true/false or 1/0 (absent or empty: false); anything else is a
    400 rather than a silent false (?force=yes must not mean "don't force")."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise bad_request(f'{name}: invalid value "{raw[:40]}": must be true or false')


MAX_QUERY_VALUE = 8192
"""Longest query parameter value: selectors and continue tokens are the long ones, and
kube-apiserver's own URL limit is in the same range."""


def check_query(request: Request) -> None:
    """Every query parameter name and value: bounded, no NUL, no unpaired surrogate (a NUL in a
    selector or a resourceVersion would otherwise reach Postgres, which refuses it)."""
    for key, value in request.query_params.multi_items():
        check_text(key, "query parameter name", max_len=128)
        check_text(value, f"{key[:40]}", max_len=MAX_QUERY_VALUE)


def check_text(value: str, what: str, *, max_len: int = 1024) -> str:
    """A string from a path, query or token: bounded, no NUL, no unpaired surrogate."""
    if len(value) > max_len:
        raise bad_request(f"{what}: longer than {max_len} characters")
    if _BAD_CHARS.search(value):
        raise bad_request(f"{what}: contains a NUL character or an unpaired surrogate")
    return value
