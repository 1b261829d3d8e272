"""OpenAPI v3 documents generated from the same pydantic models that validate requests.

kubectl uses them for `explain` and to learn that the server validates fields itself
(every PATCH declares the `fieldValidation` parameter), so `--validate=strict` (its
default) sends `fieldValidation=Strict` instead of validating client-side.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from hub.registry.resources import RESOURCES, Resource

Obj = dict[str, Any]


def _schema_name(r: Resource, model: str) -> str:
    prefix = "io.fleetplane.v1alpha1" if r.group else "io.k8s.api.core.v1"
    return f"{prefix}.{model}"


def _normalize(node: Any, rename: dict[str, str]) -> Any:
    """Turn pydantic's JSON schema into the OpenAPI 3.0 dialect Kubernetes tools read."""
    if isinstance(node, list):
        return [_normalize(n, rename) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    node.pop("title", None)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    # JSON Schema 2020 writes exclusive bounds as numbers; OpenAPI 3.0 (and kube-openapi's
    # Go parser, which kubectl uses) wants minimum + exclusiveMinimum: true.
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), (int, float)) and not isinstance(node.get(bound), bool):
            node[plain] = node.pop(bound)
            node[bound] = True
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        non_null = [s for s in any_of if s.get("type") != "null"]
        if len(non_null) == 1:
            node.pop("anyOf")
            inner = non_null[0]
            if "$ref" in inner:
                node["allOf"] = [inner]
            else:
                for k, v in inner.items():
                    node.setdefault(k, v)
    if "$ref" in node and len(node) > 1:
        ref = node.pop("$ref")
        node["allOf"] = [{"$ref": ref}]
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node["$ref"] = f"#/components/schemas/{rename.get(name, name)}"
    return {k: _normalize(v, rename) for k, v in node.items()}


def _gvk(r: Resource) -> dict[str, str]:
    return {"group": r.group, "version": r.version, "kind": r.kind}


def _op(r: Resource, verb: str, action: str, *, patch: bool = False, body: bool = False) -> Obj:
    op: Obj = {
        "operationId": f"{verb}{r.kind}",
        "description": f"{verb} {r.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(r),
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{_schema_name(r, r.kind)}"}}
                },
            }
        },
        "parameters": [],
    }
    if body or patch:
        op["parameters"] += [
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}, "description": "Not supported; rejected."},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {
                "name": "fieldValidation",
                "in": "query",
                "schema": {"type": "string"},
                "description": "Strict (reject unknown fields), Warn (default: warning header) or Ignore.",
            },
        ]
    if patch:
        op["parameters"].append({"name": "force", "in": "query", "schema": {"type": "boolean"}})
        types = ["application/merge-patch+json", "application/json-patch+json", "application/apply-patch+yaml"]
        if r.strategic_merge:
            types.append("application/strategic-merge-patch+json")
        op["requestBody"] = {"content": {t: {"schema": {"type": "object"}} for t in types}}
    elif body:
        op["requestBody"] = {
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{_schema_name(r, r.kind)}"}}}
        }
    return op


def _paths(r: Resource) -> Obj:
    base = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
    coll = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
    item = coll + "/{name}"
    paths: Obj = {
        coll: {"get": _op(r, "list", "list"), "post": _op(r, "create", "post", body=True)},
        item: {
            "get": _op(r, "read", "get"),
            "put": _op(r, "replace", "put", body=True),
            "patch": _op(r, "patch", "patch", patch=True),
            "delete": _op(r, "delete", "delete"),
        },
    }
    verbs = {"list": (coll, "get"), "create": (coll, "post"), "get": (item, "get"), "update": (item, "put")}
    verbs |= {"patch": (item, "patch"), "delete": (item, "delete")}
    for verb, (path, method) in verbs.items():
        if verb not in r.verbs:
            del paths[path][method]  # a read-only kind (Events) documents only its reads
    if r.has_status:
        paths[item + "/status"] = {
            "get": _op(r, "read", "get"),
            "put": _op(r, "replace", "put", body=True),
            "patch": _op(r, "patch", "patch", patch=True),
        }
    if r.namespaced:
        paths[f"{base}/{r.plural}"] = {"get": _op(r, "list", "list")}
    return paths


def _components(rs: list[Resource]) -> Obj:
    schemas: Obj = {}
    for r in rs:
        raw = r.model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs = raw.pop("$defs", {})
        rename = {name: _schema_name(r, name) for name in defs}
        rename[r.model.__name__] = _schema_name(r, r.kind)
        for name, d in defs.items():
            schemas[rename[name]] = _normalize(d, rename)
        top = _normalize(raw, rename)
        top["x-kubernetes-group-version-kind"] = [_gvk(r)]
        schemas[_schema_name(r, r.kind)] = top
    return schemas


@cache
def group_version_document(group: str, version: str) -> tuple[str, str]:
    """The per-group-version document as JSON text, and its content hash."""
    rs = [r for r in RESOURCES if r.group == group and r.version == version]
    paths: Obj = {}
    for r in rs:
        paths.update(_paths(r))
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Fleetplane hub", "version": version},
        "paths": paths,
        "components": {"schemas": _components(rs)},
    }
    text = json.dumps(doc, sort_keys=True)
    return text, hashlib.sha256(text.encode()).hexdigest()[:16].upper()


def group_versions() -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


def root_document() -> Obj:
    paths: Obj = {}
    for g, v in group_versions():
        _, h = group_version_document(g, v)
        key = f"apis/{g}/{v}" if g else f"api/{v}"
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={h}"}
    return {"paths": paths}


# ------------------------------------------------------------------ /openapi/v2 (Swagger 2.0)
#
# kubectl 1.32 validates a `kind: List` client-side, item by item, against the OpenAPI v2
# models (its v3 check treats v1/List as "fieldValidation unsupported"), and it reads v2 only
# as protobuf (gnostic openapi_v2.Document). So the hub serves the same models as v3, as
# Swagger 2.0 `definitions` with their x-kubernetes-group-version-kind, in JSON or protobuf.
# No `paths`: kubectl reads v2 paths only to choose a patch type, and without them it keeps
# its built-in choice (merge patch for Fleetplane kinds, strategic merge for Namespace).

V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
"""The Content-Type of the protobuf answer. kubectl asks with the older spelling
(`…spec.v2@v1.0+protobuf`), which Go's mime parser refuses in a response."""

_V2_DROPPED = {"anyOf", "oneOf", "allOf", "nullable", "default", "examples", "title", "const"}


def _v2_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema (as in /openapi/v3) in the Swagger 2.0 dialect."""
    if isinstance(node, list):
        return [_v2_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    all_of = node.get("allOf")
    ref = node.get("$ref")
    if ref is None and isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        ref = all_of[0]["$ref"]
    if isinstance(ref, str):
        out: Obj = {"$ref": ref.replace("#/components/schemas/", "#/definitions/")}
        if isinstance(node.get("description"), str):
            out["description"] = node["description"]
        return out  # Swagger 2.0: siblings of $ref are ignored (kube-openapi refuses a type there)
    out = {}
    for k, v in node.items():
        if k in _V2_DROPPED:
            continue
        if k == "properties" and isinstance(v, dict):
            out[k] = {name: _v2_schema(s) for name, s in v.items()}
        elif k in ("items", "additionalProperties"):
            out[k] = _v2_schema(v)
        else:
            out[k] = v
    return out


@cache
def swagger_document() -> Obj:
    """/openapi/v2 as JSON: every served kind's model as Swagger 2.0 definitions."""
    definitions: Obj = {}
    for g, v in group_versions():
        schemas = _components([r for r in RESOURCES if r.group == g and r.version == v])
        definitions.update({name: _v2_schema(s) for name, s in schemas.items()})
    return {
        "swagger": "2.0",
        "info": {"title": "Fleetplane hub", "version": "v1alpha1"},
        "paths": {},
        "definitions": dict(sorted(definitions.items())),
    }


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (strings and messages)."""
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _text(num: int, s: str) -> bytes:
    return _field(num, s.encode())


def _any(num: int, value: Any) -> bytes:
    """A gnostic Any: the value as YAML text (JSON is YAML)."""
    return _field(num, _text(2, json.dumps(value, sort_keys=True)))


def _pb_schema(s: Obj) -> bytes:
    """gnostic openapi_v2.Schema: the fields kube-openapi's model parser reads."""
    out = b""
    if "$ref" in s:
        out += _text(1, s["$ref"])
    if isinstance(s.get("format"), str):
        out += _text(2, s["format"])
    if isinstance(s.get("description"), str):
        out += _text(4, s["description"])
    for name in s.get("required") or []:
        out += _text(19, name)
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        out += _field(21, _field(1, _pb_schema(extra)))
    elif extra is True:
        out += _field(21, _varint(2 << 3 | 0) + _varint(1))
    if isinstance(s.get("type"), str):
        out += _field(22, _text(1, s["type"]))
    if isinstance(s.get("items"), dict):
        out += _field(23, _field(1, _pb_schema(s["items"])))
    if isinstance(s.get("properties"), dict):
        props = b"".join(_field(1, _text(1, k) + _field(2, _pb_schema(v))) for k, v in s["properties"].items())
        out += _field(25, props)
    for k, v in s.items():
        if k.startswith("x-"):
            out += _field(31, _text(1, k) + _any(2, v))
    return out


@cache
def swagger_protobuf() -> tuple[bytes, str]:
    """/openapi/v2 as a protobuf gnostic openapi_v2.Document, and its content hash."""
    doc = swagger_document()
    info = _text(1, doc["info"]["title"]) + _text(2, doc["info"]["version"])
    defs = b"".join(_field(1, _text(1, k) + _field(2, _pb_schema(v))) for k, v in doc["definitions"].items())
    body = _text(1, doc["swagger"]) + _field(2, info) + _field(9, defs)
    return body, hashlib.sha256(body).hexdigest()[:16].upper()
