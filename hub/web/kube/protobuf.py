"""Just enough of the Kubernetes protobuf encoding to accept `kubectl create namespace NAME`.

kubectl's typed clients send built-in kinds as protobuf and do not fall back to JSON on 415.
Only Namespace is a built-in kind here, and only its metadata carries data, so this decodes
the envelope (magic "k8s\\0" + runtime.Unknown) and ObjectMeta's name, generateName, labels
and annotations. Field numbers are from k8s.io/api core/v1 and apimachinery meta/v1 generated.proto.
Written by hand because pulling a protobuf toolchain in for one message is not worth it.
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
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _map_entry(buf: bytes) -> tuple[str, str]:
    k = v = ""
    for num, _, val in _fields(buf):
        if num == 1:
            k = val.decode()
        elif num == 2:
            v = val.decode()
    return k, v


def decode_namespace(body: bytes) -> dict[str, Any]:
    """Decode a protobuf-encoded v1 Namespace into its JSON form (metadata only)."""
    if not body.startswith(MAGIC):
        raise ValueError("missing the k8s protobuf magic prefix")
    raw = b""
    for num, _, val in _fields(body[len(MAGIC) :]):
        if num == 2:
            raw = val
    meta: dict[str, Any] = {}
    for num, _, val in _fields(raw):
        if num != 1:
            continue
        for mnum, _, mval in _fields(val):
            if mnum == 1:
                meta["name"] = mval.decode()
            elif mnum == 2:
                meta["generateName"] = mval.decode()
            elif mnum == 11:
                k, v = _map_entry(mval)
                meta.setdefault("labels", {})[k] = v
            elif mnum == 12:
                k, v = _map_entry(mval)
                meta.setdefault("annotations", {})[k] = v
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
