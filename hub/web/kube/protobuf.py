"""Just enough of the Kubernetes protobuf encoding to accept `kubectl create namespace NAME`.

kubectl's typed clients send built-in kinds as protobuf and do not fall back to JSON on 415.
Only Namespace is a built-in kind here, and only its metadata carries data, so this decodes
the envelope (magic "k8s\\0" + runtime.Unknown) and ObjectMeta's name, generateName, labels
and annotations. Field numbers are from k8s.io/api core/v1 and apimachinery meta/v1 generated.proto.
Written by hand because pulling a protobuf toolchain in for one message is not worth it.
`decode_object` reads the string fields of the review requests `kubectl auth` sends the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MAGIC = b"k8s\x00"


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        if shift >= 64:  # at most 10 bytes: a longer run is garbage, and big-int shifts cost CPU
            raise ValueError("varint longer than 64 bits")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
            yield num, wire, v
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field")
            yield num, wire, buf[i : i + n]
            i += n
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
            if i > len(buf):
                raise ValueError("truncated field")
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _bytes(num: int, wire: int, val: Any, what: str) -> bytes:
    """A length-delimited field's payload; any other wire type there means the body is not a
    Namespace (a varint where ObjectMeta should be, say)."""
    if wire != 2 or not isinstance(val, bytes):
        raise ValueError(f"{what} (field {num}) is not a length-delimited value")
    return val


def _text(num: int, wire: int, val: Any, what: str) -> str:
    try:
        return _bytes(num, wire, val, what).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not valid UTF-8") from None


def _map_entry(buf: bytes, what: str) -> tuple[str, str]:
    k = v = ""
    for num, wire, val in _fields(buf):
        if num == 1:
            k = _text(num, wire, val, f"{what} key")
        elif num == 2:
            v = _text(num, wire, val, f"{what} value")
    return k, v


def decode_namespace(body: bytes) -> dict[str, Any]:
    """Decode a protobuf-encoded v1 Namespace into its JSON form (metadata only).

    Raises ValueError, saying what is wrong, for anything that is not one."""
    if not body.startswith(MAGIC):
        raise ValueError("missing the k8s protobuf magic prefix")
    raw = b""
    for num, wire, val in _fields(body[len(MAGIC) :]):
        if num == 2:
            raw = _bytes(num, wire, val, "runtime.Unknown raw")
    meta: dict[str, Any] = {}
    for num, wire, val in _fields(raw):
        if num != 1:
            continue
        for mnum, mwire, mval in _fields(_bytes(num, wire, val, "metadata")):
            if mnum == 1:
                meta["name"] = _text(mnum, mwire, mval, "metadata.name")
            elif mnum == 2:
                meta["generateName"] = _text(mnum, mwire, mval, "metadata.generateName")
            elif mnum == 11:
                k, v = _map_entry(_bytes(mnum, mwire, mval, "metadata.labels"), "metadata.labels")
                meta.setdefault("labels", {})[k] = v
            elif mnum == 12:
                k, v = _map_entry(_bytes(mnum, mwire, mval, "metadata.annotations"), "metadata.annotations")
                meta.setdefault("annotations", {})[k] = v
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


Schema = dict[int, "str | tuple[str, Schema]"]
"""Field number → JSON name of a string field, or (JSON name, schema) of a message field."""


def decode_object(body: bytes, schema: Schema) -> dict[str, Any]:
    """Decode a protobuf-encoded built-in object into its JSON form, keeping only the string
    and message fields `schema` names (the review requests of `kubectl auth`, hub.web.kube.authz).

    Raises ValueError, saying what is wrong, for anything that is not such an object."""
    if not body.startswith(MAGIC):
        raise ValueError("missing the k8s protobuf magic prefix")
    out: dict[str, Any] = {}
    raw = b""
    for num, wire, val in _fields(body[len(MAGIC) :]):
        if num == 1:
            out.update(_message(_bytes(num, wire, val, "runtime.Unknown typeMeta"), {1: "apiVersion", 2: "kind"}, ""))
        elif num == 2:
            raw = _bytes(num, wire, val, "runtime.Unknown raw")
    return {**out, **_message(raw, schema, "")}


def _message(buf: bytes, schema: Schema, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for num, wire, val in _fields(buf):
        field = schema.get(num)
        if field is None:
            continue
        if isinstance(field, str):
            out[field] = _text(num, wire, val, where + field)
        else:
            name, sub = field
            out[name] = _message(_bytes(num, wire, val, where + name), sub, f"{where}{name}.")
    return out
