"""The review APIs `kubectl auth` uses: "who am I" and "may I".

- POST /apis/authentication.k8s.io/v1/selfsubjectreviews        `kubectl auth whoami`
- POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews   `kubectl auth can-i VERB RESOURCE`
- POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews    `kubectl auth can-i --list`

and their discovery documents. Every answer comes from hub.registry.access (`review`,
`rules`, the Subject's user name) — the functions the registry enforces — so what `can-i`
says is what the API does; this module only translates the Kubernetes shapes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hub.errors import ApiError, bad_request, invalid
from hub.registry.access import VERBS, Review, Subject, needs_object, review, rules
from hub.registry.objects import Obj
from hub.registry.resources import RESOURCES, Resource
from hub.store.store import now_rfc3339
from hub.web.context import hub_of, subject_of
from hub.web.inputs import check_text
from hub.web.kube.body import parse_body, read_body
from hub.web.kube.protobuf import Schema, decode_object

AUTHORIZATION = "authorization.k8s.io"
AUTHENTICATION = "authentication.k8s.io"
V1 = "v1"
PROTOBUF = "application/vnd.kubernetes.protobuf"

REVIEWS: dict[str, list[tuple[str, str]]] = {
    AUTHORIZATION: [
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
        ("selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    ],
    AUTHENTICATION: [("selfsubjectreviews", "SelfSubjectReview")],
}
"""The review resources: create-only, cluster-scoped, nothing stored (as in Kubernetes)."""

NON_RESOURCE_READS = ("/api", "/apis", "/version", "/openapi", "/healthz", "/livez", "/readyz")
"""Non-resource paths every authenticated subject may GET (discovery and health)."""

router = APIRouter()


# ------------------------------------------------------------------ discovery


def _group_doc(group: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{group}/{V1}", "version": V1}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [gv], "preferredVersion": gv}


def api_groups() -> list[dict[str, Any]]:
    """The groups of this module, for /apis (hub.web.kube.discovery)."""
    return [_group_doc(g) for g in REVIEWS]


def _resource_list(group: str) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{V1}",
        "resources": [
            {"name": plural, "singularName": "", "namespaced": False, "kind": kind, "verbs": ["create"]}
            for plural, kind in REVIEWS[group]
        ],
    }


@router.get(f"/apis/{AUTHORIZATION}", include_in_schema=False)
async def authorization_group() -> dict[str, Any]:
    return _group_doc(AUTHORIZATION)


@router.get(f"/apis/{AUTHORIZATION}/{V1}", include_in_schema=False)
async def authorization_resources() -> dict[str, Any]:
    return _resource_list(AUTHORIZATION)


@router.get(f"/apis/{AUTHENTICATION}", include_in_schema=False)
async def authentication_group() -> dict[str, Any]:
    return _group_doc(AUTHENTICATION)


@router.get(f"/apis/{AUTHENTICATION}/{V1}", include_in_schema=False)
async def authentication_resources() -> dict[str, Any]:
    return _resource_list(AUTHENTICATION)


# ------------------------------------------------------------------ request bodies


_RESOURCE_ATTRIBUTES: Schema = {
    1: "namespace",
    2: "verb",
    3: "group",
    4: "version",
    5: "resource",
    6: "subresource",
    7: "name",
}
PROTOBUF_SCHEMAS: dict[str, Schema] = {
    "SelfSubjectAccessReview": {
        2: (
            "spec",
            {1: ("resourceAttributes", _RESOURCE_ATTRIBUTES), 2: ("nonResourceAttributes", {1: "path", 2: "verb"})},
        )
    },
    "SelfSubjectRulesReview": {2: ("spec", {1: "namespace"})},
    "SelfSubjectReview": {},
}
"""The fields read from kubectl's protobuf bodies (its typed clients send built-in kinds so);
field numbers from k8s.io/api authorization/v1 and authentication/v1 generated.proto."""


async def _body(request: Request, group: str, kind: str) -> dict[str, Any]:
    raw = await read_body(request)
    ct = request.headers.get("content-type", "application/json")
    if ct.split(";")[0].strip().lower() == PROTOBUF:
        try:
            body: Any = decode_object(raw, PROTOBUF_SCHEMAS[kind])
        except ValueError as exc:
            raise bad_request(f"{kind}: cannot decode protobuf body: {exc}") from exc
    else:
        body = parse_body(raw, ct, kind) if raw.strip() else {}
    if not isinstance(body, dict):
        raise _invalid(group, kind, "", "must be an object")
    if body.get("kind") not in (None, kind):
        raise _invalid(group, kind, "kind", f'must be "{kind}"')
    if body.get("apiVersion") not in (None, f"{group}/{V1}"):
        raise _invalid(group, kind, "apiVersion", f'must be "{group}/{V1}"')
    return body


def _invalid(group: str, kind: str, field: str, message: str) -> ApiError:
    return invalid(kind, group, "", [{"reason": "FieldValueInvalid", "field": field, "message": message}])


def _strings(group: str, kind: str, where: str, attrs: Any, names: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(attrs, dict):
        raise _invalid(group, kind, where, "must be an object")
    out = {}
    for n in names:
        v = attrs.get(n, "")
        if v is None:
            v = ""
        if not isinstance(v, str):
            raise _invalid(group, kind, f"{where}.{n}", "must be a string")
        out[n] = check_text(v, f"{kind} {where}.{n}", max_len=512)  # protobuf strings skip the body checks
    return out


def _answer(body: dict[str, Any], group: str, kind: str, status: dict[str, Any]) -> JSONResponse:
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    out = {
        "kind": kind,
        "apiVersion": f"{group}/{V1}",
        "metadata": {**meta, "creationTimestamp": now_rfc3339()},
        "status": status,
    }
    if "spec" in body:
        out["spec"] = body["spec"]
    return JSONResponse(out, status_code=201)


# ------------------------------------------------------------------ whoami


def user_info(subject: Subject) -> dict[str, Any]:
    info: dict[str, Any] = {"username": subject.username, "groups": subject.groups}
    if subject.kind == "team":
        info["extra"] = {"fleetplane.io/namespaces": list(subject.namespaces)}
    elif subject.kind == "agent":
        info["extra"] = {"fleetplane.io/cluster": [subject.name]}
    return info


@router.post(f"/apis/{AUTHENTICATION}/{V1}/selfsubjectreviews", include_in_schema=False)
async def self_subject_review(request: Request) -> JSONResponse:
    body = await _body(request, AUTHENTICATION, "SelfSubjectReview")
    return _answer(body, AUTHENTICATION, "SelfSubjectReview", {"userInfo": user_info(subject_of(request))})


# ------------------------------------------------------------------ can-i


def _matching(group: str, plural: str) -> list[Resource]:
    return [r for r in RESOURCES if group in ("*", r.group) and plural in ("*", r.plural)]


async def _review_resource(request: Request, subject: Subject, a: dict[str, str]) -> Review:
    """One resource question; wildcards are allowed only when every case they cover is."""
    group, plural, verb, sub = a["group"], a["resource"], a["verb"], a["subresource"]
    if group in REVIEWS and any(plural in ("*", p) for p, _ in REVIEWS[group]):
        if verb in ("create", "*") and not sub:
            return Review(True, "every authenticated subject may ask about itself")
        return Review(False, f"{group} reviews can only be created")
    matched = _matching(group, plural)
    if not matched:
        return Review(False, f'this hub does not serve the resource "{plural}" in the group "{group or "core"}"')
    verbs = list(VERBS) if verb == "*" else [verb]
    answers = []
    for r in matched:
        stored = await _stored(request, subject, r, a["namespace"], a["name"]) if a["name"] else None
        answers += [review(subject, r, v, sub, a["namespace"] or None, a["name"], stored=stored) for v in verbs]
    refused = next((x for x in answers if not x.allowed), None)
    if refused is not None:
        return refused
    if len(answers) == 1:
        return answers[0]
    return Review(True, "; ".join(x.reason for x in answers if x.reason))


async def _stored(request: Request, subject: Subject, res: Resource, namespace: str, name: str) -> Obj | None:
    """The named object as the subject sees it, where its scope depends on content (else None)."""
    if not needs_object(subject, res):
        return None
    try:
        return await hub_of(request).registry.get(res, namespace or None, name, subject)
    except ApiError as err:
        if err.code == 404:
            return None
        raise


def _review_path(a: dict[str, str]) -> Review:
    path = a["path"]
    readable = any(path == p or path.startswith(p + "/") for p in NON_RESOURCE_READS)
    if a["verb"] == "get" and readable:
        return Review(True, "discovery and health paths are readable by every authenticated subject")
    return Review(False, "only GET of discovery and health paths is allowed outside the resource API")


@router.post(f"/apis/{AUTHORIZATION}/{V1}/selfsubjectaccessreviews", include_in_schema=False)
async def self_subject_access_review(request: Request) -> JSONResponse:
    kind = "SelfSubjectAccessReview"
    body = await _body(request, AUTHORIZATION, kind)
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise _invalid(AUTHORIZATION, kind, "spec", "Required value")
    res_attrs, path_attrs = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (res_attrs is None) == (path_attrs is None):
        raise _invalid(
            AUTHORIZATION,
            kind,
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )
    subject = subject_of(request)
    if res_attrs is not None:
        names = ("namespace", "verb", "group", "version", "resource", "subresource", "name")
        a = _strings(AUTHORIZATION, kind, "spec.resourceAttributes", res_attrs, names)
        if not a["verb"] or not a["resource"]:
            field = "verb" if not a["verb"] else "resource"
            raise _invalid(AUTHORIZATION, kind, f"spec.resourceAttributes.{field}", "Required value")
        answer = await _review_resource(request, subject, a)
    else:
        a = _strings(AUTHORIZATION, kind, "spec.nonResourceAttributes", path_attrs, ("path", "verb"))
        answer = _review_path(a)
    status: dict[str, Any] = {"allowed": answer.allowed}
    if not answer.allowed:
        status["denied"] = True
    if answer.reason:
        status["reason"] = answer.reason
    return _answer(body, AUTHORIZATION, kind, status)


@router.post(f"/apis/{AUTHORIZATION}/{V1}/selfsubjectrulesreviews", include_in_schema=False)
async def self_subject_rules_review(request: Request) -> JSONResponse:
    kind = "SelfSubjectRulesReview"
    body = await _body(request, AUTHORIZATION, kind)
    spec = body.get("spec") if body.get("spec") is not None else {}
    a = _strings(AUTHORIZATION, kind, "spec", spec, ("namespace",))
    subject = subject_of(request)
    resource_rules: list[dict[str, Any]] = [
        {"verbs": verbs, "apiGroups": [res.group], "resources": [f"{res.plural}/{sub}" if sub else res.plural]}
        for res, sub, verbs in rules(subject, a["namespace"] or None)
    ]
    resource_rules += [
        {"verbs": ["create"], "apiGroups": [group], "resources": [plural]}
        for group, items in REVIEWS.items()
        for plural, _ in items
    ]
    status = {
        "resourceRules": resource_rules,
        "nonResourceRules": [
            {"verbs": ["get"], "nonResourceURLs": [p for q in NON_RESOURCE_READS for p in (q, q + "/*")]}
        ],
        "incomplete": False,
    }
    return _answer(body, AUTHORIZATION, kind, status)
