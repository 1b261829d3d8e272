"""Hostile input against a real hub on real Postgres: every request here is one an attacker or a
careless client could send, and every one must get a 4xx `Status` that names what was wrong,
leave the store exactly as it was, and leave the hub ready and its memory bounded.

Tables pin the inputs the issue found (decoded-size bombs, NUL and surrogates, wrong metadata
types on every write verb, deep nesting, odd integers, DeleteOptions, protobuf, YAML tags,
NaN, join garbage); hypothesis varies them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hubtest import HubProcess, workload

API = "/apis/fleetplane.io/v1alpha1"
WL = f"{API}/namespaces/team-a/workloads"
CL = f"{API}/clusters"
NS = "/api/v1/namespaces"
REST = "/v1/namespaces/team-a/workloads"
JOIN = "/v1/clusters/join"
KEEPER = f"{WL}/keeper"
EDGE = f"{CL}/edge-1"  # its status is writable over HTTP (a Workload's is the controllers' only)

JSON = "application/json"
YAML = "application/yaml"
MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"

BODY_LIMIT = 3 * 1024 * 1024  # the hub's default max_body_bytes
RSS_GROWTH_LIMIT = 300 * 1024 * 1024
"""How much the hub's resident memory may grow over this whole module. Before the input
boundary, one 609-byte YAML body took it past 8 GB."""

FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ the hub and what it stores


@dataclass
class Target:
    hub: HubProcess
    c: httpx.Client
    rss_before: int = 0
    clusters_and_namespaces: Any = None

    def rss(self) -> int:
        assert self.hub.proc is not None
        return int(psutil.Process(self.hub.proc.pid).memory_info().rss)


@pytest.fixture(scope="module")
def target(hub: HubProcess) -> Iterator[Target]:
    """The module's hub with a namespace, a Workload and a Cluster to aim at."""
    with hub.client() as c:
        assert c.post(NS, json={"metadata": {"name": "team-a"}}).status_code == 201
        assert c.post(WL, json=workload("keeper", gpus=2)).status_code == 201
        assert c.post(CL, json={"metadata": {"name": "edge-1"}, "spec": {"region": "eu-west-1"}}).status_code == 201
        t = Target(hub, c)
        t.rss_before, t.clusters_and_namespaces = t.rss(), (c.get(CL).json()["items"], c.get(NS).json()["items"])
        yield t


@pytest.fixture(scope="module")
def c(target: Target) -> httpx.Client:
    return target.c


@pytest.fixture(scope="module")
def anon(hub: HubProcess) -> Iterator[httpx.Client]:
    with hub.client(token="") as a:
        yield a


def stored(c: httpx.Client) -> tuple[str, list[dict[str, Any]]]:
    """What the store holds: the resourceVersion a list answers with is the store's own, so any
    write anywhere (a Cluster, a Namespace, a Workload) changes it; and the Workloads."""
    r = c.get(WL)
    assert r.status_code == 200, r.text
    return r.json()["metadata"]["resourceVersion"], r.json()["items"]


def said(body: dict[str, Any]) -> str:
    causes = (body.get("details") or {}).get("causes") or []
    return " ".join([str(body.get("message", ""))] + [f"{x.get('field', '')} {x.get('message', '')}" for x in causes])


def expect_refused(r: httpx.Response, *words: str, codes: tuple[int, ...] = ()) -> dict[str, Any]:
    """A 4xx Status (never a 5xx, never FastAPI's {"detail": …}) that names each of `words`."""
    where = f"{r.request.method} {str(r.request.url)[:200]}"
    assert 400 <= r.status_code < 500, f"{where} answered {r.status_code}: {r.text[:600]}"
    if codes:
        assert r.status_code in codes, f"{where} answered {r.status_code}, expected {codes}: {r.text[:600]}"
    body = r.json()
    assert body.get("kind") == "Status" and body.get("status") == "Failure", f"{where}: not a Status: {body}"
    assert body.get("code") == r.status_code and body.get("reason"), body
    for w in words:
        assert w in said(body), f"{where}: the Status does not name {w!r}: {said(body)[:600]}"
    return dict(body)


def refused_and_unchanged(c: httpx.Client, send: Callable[[], httpx.Response], *words: str, **kw: Any) -> None:
    before = stored(c)
    expect_refused(send(), *words, **kw)
    assert stored(c) == before, "a refused request changed what is stored"


def send(c: httpx.Client, method: str, path: str, content: bytes, ctype: str) -> httpx.Response:
    return c.request(method, path, content=content, headers={"Content-Type": ctype})


def keeper(c: httpx.Client) -> dict[str, Any]:
    r = c.get(KEEPER)
    assert r.status_code == 200, r.text
    return dict(r.json())


# ------------------------------------------------------------------ the write verbs

# Each write verb as (label, method, path, content type for a JSON body, content type for a
# YAML body or None) — the bodies the bombs below are sent as.
ENDPOINTS = [
    ("POST", "POST", WL, JSON, YAML),
    ("PUT", "PUT", KEEPER, JSON, YAML),
    ("PUT status", "PUT", f"{EDGE}/status", JSON, YAML),
    ("merge patch", "PATCH", KEEPER, MERGE, None),
    ("merge patch status", "PATCH", f"{EDGE}/status", MERGE, None),
    ("JSON patch", "PATCH", KEEPER, JSONPATCH, None),
    ("server-side apply", "PATCH", f"{KEEPER}?fieldManager=hostile", APPLY, APPLY),
    ("DELETE", "DELETE", KEEPER, JSON, None),
    ("REST POST", "POST", REST, JSON, None),
    ("REST what-if", "POST", "/v1/whatif", JSON, None),
    ("POST cluster", "POST", CL, JSON, YAML),
    ("POST namespace", "POST", NS, JSON, YAML),
]
JSON_ENDPOINTS = [pytest.param(m, p, j, id=label) for label, m, p, j, _ in ENDPOINTS]
YAML_ENDPOINTS = [pytest.param(m, p, y, id=label) for label, m, p, _, y in ENDPOINTS if y]


def _billion_laughs() -> bytes:
    """The issue's 609-byte body: nested aliases that expand to ~10⁷ nodes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return ("\n".join(lines) + "\nmetadata: {name: lol}\n").encode()


DEEP_JSON = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested too deeply", id="100k nested arrays"),
    pytest.param(b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "nested too deeply", id="5k nested objects"),
    pytest.param(b'{"spec":' + b"[" * 300 + b"]" * 300 + b"}", "nested too deeply", id="300 deep in spec"),
]
WIDE_JSON = [
    pytest.param(b'{"spec":{"x":[' + b"0," * 250_000 + b"0]}}", "more than 200000 values", id="250k-wide array"),
    pytest.param(
        b'{"spec":{' + b",".join(b'"k%d":0' % i for i in range(210_000)) + b"}}",
        "more than 200000 values",
        id="210k-wide object",
    ),
]
# The wide bombs cost the hub a second each to refuse (decoding is the work); three verbs with
# three different decoders behind them are enough.
WIDE_ENDPOINTS = [p for p in JSON_ENDPOINTS if p.id in ("POST", "server-side apply", "REST POST")]
YAML_BOMBS = [
    pytest.param(_billion_laughs(), "YAML anchors are not accepted", id="billion laughs"),
    pytest.param(b"x: &x {a: 1}\ny: *x\n", "YAML anchors are not accepted", id="one alias"),
    pytest.param(b"a: " + b"[" * 10_000 + b"]" * 10_000, "nested too deeply", id="10k nested flow sequences"),
    pytest.param(b"".join(b"  " * i + b"a:\n" for i in range(300)), "nested too deeply", id="300 nested block maps"),
]


@pytest.mark.parametrize("method,path,ctype", JSON_ENDPOINTS)
@pytest.mark.parametrize("content,words", DEEP_JSON)
def test_deeply_nested_json_is_refused_on_every_write_verb_before_anything_is_stored(
    c: httpx.Client, method: str, path: str, ctype: str, content: bytes, words: str
) -> None:
    refused_and_unchanged(c, lambda: send(c, method, path, content, ctype), words, codes=(400,))


@pytest.mark.parametrize("method,path,ctype", WIDE_ENDPOINTS)
@pytest.mark.parametrize("content,words", WIDE_JSON)
def test_json_with_too_many_values_is_refused_before_anything_is_stored(
    c: httpx.Client, method: str, path: str, ctype: str, content: bytes, words: str
) -> None:
    refused_and_unchanged(c, lambda: send(c, method, path, content, ctype), words, codes=(400,))


@pytest.mark.parametrize("method,path,ctype", YAML_ENDPOINTS)
@pytest.mark.parametrize("content,words", YAML_BOMBS)
def test_yaml_bombs_are_refused_on_every_verb_that_takes_yaml(
    c: httpx.Client, method: str, path: str, ctype: str, content: bytes, words: str
) -> None:
    refused_and_unchanged(c, lambda: send(c, method, path, content, ctype), words, codes=(400,))


@pytest.mark.parametrize("method,path,ctype", JSON_ENDPOINTS)
def test_a_body_over_the_limit_is_413_with_or_without_content_length(
    c: httpx.Client, method: str, path: str, ctype: str
) -> None:
    over = b'{"metadata":{"name":"big","annotations":{"a":"' + b"x" * (BODY_LIMIT + 10) + b'"}}}'
    refused_and_unchanged(c, lambda: send(c, method, path, over, ctype), "exceeds the limit", codes=(413,))

    def chunked() -> Iterator[bytes]:  # no Content-Length: the hub must count while reading
        for _ in range(BODY_LIMIT // 65536 + 2):
            yield b"x" * 65536

    refused_and_unchanged(
        c,
        lambda: c.request(method, path, content=chunked(), headers={"Content-Type": ctype}),
        "exceeds the limit",
        codes=(413,),
    )


def test_a_string_just_under_the_body_limit_is_refused_by_the_annotation_limit(c: httpx.Client) -> None:
    blob = "x" * (BODY_LIMIT - 4096)
    big = workload("big")
    big["metadata"]["annotations"] = {"blob": blob}
    for label, send_it in [
        ("POST", lambda: c.post(WL, json=big)),
        (
            "PUT",
            lambda: c.put(KEEPER, json=dict(keeper(c), metadata={**keeper(c)["metadata"], "annotations": {"b": blob}})),
        ),
        (
            "merge patch",
            lambda: send(c, "PATCH", KEEPER, json.dumps({"metadata": {"annotations": {"b": blob}}}).encode(), MERGE),
        ),
        (
            "JSON patch",
            lambda: send(
                c,
                "PATCH",
                KEEPER,
                json.dumps([{"op": "add", "path": "/metadata/annotations", "value": {"b": blob}}]).encode(),
                JSONPATCH,
            ),
        ),
        ("REST POST", lambda: c.post(REST, json=big)),
    ]:
        before = stored(c)
        expect_refused(send_it(), "metadata.annotations", "262144 bytes", codes=(422,))
        assert stored(c) == before, label


def test_a_json_patch_that_doubles_the_object_with_copies_is_refused_while_it_is_applied(c: httpx.Client) -> None:
    # Copying /spec/a into a new key of itself doubles it: 2^40 values if it ran to the end.
    ops: list[dict[str, Any]] = [{"op": "add", "path": "/spec/a", "value": {"x": [1, 2, 3, 4, 5, 6, 7, 8]}}]
    ops += [{"op": "copy", "from": "/spec/a", "path": f"/spec/a/n{i}"} for i in range(40)]
    refused_and_unchanged(
        c,
        lambda: send(c, "PATCH", KEEPER, json.dumps(ops).encode(), JSONPATCH),
        "more than 200000 values",
        codes=(400,),
    )


@pytest.mark.parametrize("path", ["/spec/manifests/-", "/metadata/finalizers/-", "/spec/nope/-"])
def test_a_json_patch_test_op_on_the_end_of_an_array_fails_cleanly(c: httpx.Client, path: str) -> None:
    ops = [{"op": "test", "path": path, "value": 1}]
    refused_and_unchanged(
        c, lambda: send(c, "PATCH", KEEPER, json.dumps(ops).encode(), JSONPATCH), "test", codes=(422, 400)
    )


# ------------------------------------------------------------------ NUL and lone surrogates

BAD_CHARS = ["\x00", "\ud800", "\udfff"]


def _with_meta(**meta: Any) -> dict[str, Any]:
    w = workload("bad-chars")
    w["metadata"].update(meta)
    return w


def _body_places(s: str) -> list[tuple[str, dict[str, Any], str]]:
    """(label, Workload, the field the error must name) with `s` in one string of the body."""
    w_spec = workload("bad-chars")
    w_spec["spec"]["gpu"]["models"] = [s]
    w_manifest = workload("bad-chars")
    w_manifest["spec"]["manifests"][0]["metadata"]["name"] = s
    return [
        ("name", _with_meta(name=s), "metadata.name"),
        ("generateName", _with_meta(generateName=s), "metadata.generateName"),
        ("namespace", _with_meta(namespace=s), "metadata.namespace"),
        ("label key", _with_meta(labels={s: "v"}), "metadata.labels"),
        ("label value", _with_meta(labels={"k": s}), "metadata.labels.k"),
        ("annotation key", _with_meta(annotations={s: "v"}), "metadata.annotations"),
        ("annotation value", _with_meta(annotations={"k": s}), "metadata.annotations.k"),
        ("finalizer", _with_meta(finalizers=[s]), "metadata.finalizers[0]"),
        ("spec string", w_spec, "spec.gpu.models[0]"),
        ("manifest name", w_manifest, "spec.manifests[0].metadata.name"),
    ]


def _send_on(c: httpx.Client, verb: str, obj: dict[str, Any]) -> httpx.Response:
    """`obj` sent with one write verb (its JSON keeps lone surrogates as \\udXXX escapes)."""
    if verb == "POST":
        return send(c, "POST", WL, json.dumps(obj).encode(), JSON)
    if verb == "PUT":
        return send(c, "PUT", KEEPER, json.dumps(obj).encode(), JSON)
    if verb == "merge patch":
        return send(c, "PATCH", KEEPER, json.dumps({"metadata": obj["metadata"], "spec": obj["spec"]}).encode(), MERGE)
    if verb == "JSON patch":
        ops = [
            {"op": "replace", "path": "/metadata", "value": obj["metadata"]},
            {"op": "replace", "path": "/spec", "value": obj["spec"]},
        ]
        return send(c, "PATCH", KEEPER, json.dumps(ops).encode(), JSONPATCH)
    if verb == "server-side apply":
        return send(c, "PATCH", f"{WL}/bad-chars?fieldManager=hostile", json.dumps(obj).encode(), APPLY)
    if verb == "REST POST":
        return send(c, "POST", REST, json.dumps(obj).encode(), JSON)
    if verb == "REST what-if":
        return send(c, "POST", "/v1/whatif", json.dumps({"workloads": [obj]}).encode(), JSON)
    raise AssertionError(verb)


BODY_VERBS = ["POST", "PUT", "merge patch", "JSON patch", "server-side apply", "REST POST", "REST what-if"]


@pytest.mark.parametrize("verb", BODY_VERBS)
@pytest.mark.parametrize("char", BAD_CHARS, ids=["NUL", "high surrogate", "low surrogate"])
def test_nul_and_lone_surrogates_in_any_body_string_are_refused_naming_the_field(
    c: httpx.Client, verb: str, char: str
) -> None:
    for label, obj, field in _body_places(f"a{char}b"):
        before = stored(c)
        # The field as the error names it: metadata.labels.k, or [0].value.labels.k inside a
        # JSON patch operation, or workloads[0].metadata.labels.k in a what-if.
        tail = field.split(".", 1)[1]
        body = expect_refused(_send_on(c, verb, obj), "NUL character or an unpaired surrogate", tail, codes=(400,))
        assert stored(c) == before, f"{verb} with a bad {label} changed what is stored: {body}"


bad_text = st.tuples(
    st.text(max_size=8), st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]), st.text(max_size=8)
).map("".join)


@FUZZ
@given(s=bad_text, place=st.integers(0, 9), verb=st.sampled_from(BODY_VERBS))
def test_any_string_with_a_nul_or_a_lone_surrogate_is_refused_wherever_it_is_sent(
    c: httpx.Client, s: str, place: int, verb: str
) -> None:
    label, obj, field = _body_places(s)[place]
    before = stored(c)
    expect_refused(
        _send_on(c, verb, obj), "NUL character or an unpaired surrogate", field.split(".", 1)[1], codes=(400,)
    )
    assert stored(c) == before, f"{verb} with a bad {label} changed what is stored"


# A NUL travels in a URL as %00; a lone surrogate cannot be UTF-8, so it arrives as the bytes a
# careless encoder writes for it (CESU-8, %ED%A0%80), which the server must not choke on either.
URL_BAD = ["%00", "%ED%A0%80", "%FF"]

QUERY_PLACES = [
    ("GET", WL, "continue"),
    ("GET", WL, "labelSelector"),
    ("GET", WL, "fieldSelector"),
    ("GET", WL, "resourceVersion"),
    ("GET", WL, "resourceVersionMatch"),
    ("GET", WL, "limit"),
    ("GET", WL + "?watch=true&timeoutSeconds=1", "resourceVersion"),
    ("GET", WL + "?watch=true", "timeoutSeconds"),
    ("GET", WL + "?watch=true&timeoutSeconds=1", "labelSelector"),
    ("POST", WL, "fieldManager"),
    ("POST", WL, "fieldValidation"),
    ("POST", WL, "dryRun"),
    ("PATCH", KEEPER, "fieldManager"),
    ("DELETE", KEEPER, "propagationPolicy"),
    ("DELETE", KEEPER, "gracePeriodSeconds"),
    ("DELETE", KEEPER, "dryRun"),
    ("GET", WL, "unknown\x00name"),
    ("GET", "/v1/workloads", "continue"),
    ("GET", "/v1/workloads", "limit"),
    ("GET", "/v1/workloads", "explain"),
    ("POST", REST, "fieldValidation"),
    ("POST", "/v1/whatif", "fieldValidation"),
]


@pytest.mark.parametrize("method,path,param", QUERY_PLACES)
def test_a_nul_in_any_query_parameter_is_refused_naming_the_parameter(
    c: httpx.Client, method: str, path: str, param: str
) -> None:
    sep = "&" if "?" in path else "?"
    url = f"{path}{sep}{param.replace(chr(0), '%00')}=a%00b"
    content, ctype = (json.dumps(workload("q")).encode(), JSON) if method == "POST" else (b"{}", MERGE)
    named = "query parameter name" if "\x00" in param else param
    refused_and_unchanged(c, lambda: send(c, method, url, content, ctype), named, codes=(400,))


@pytest.mark.parametrize("method,path,param", [p for p in QUERY_PLACES if p[0] == "GET"])
@pytest.mark.parametrize("bad", URL_BAD[1:], ids=["CESU-8 surrogate", "invalid UTF-8"])
def test_undecodable_bytes_in_query_parameters_never_fail_the_server(
    c: httpx.Client, method: str, path: str, param: str, bad: str
) -> None:
    # They arrive as U+FFFD: wrong where the parameter has a grammar (a number, a selector, a
    # token), harmless elsewhere; a 5xx or a non-Status error is never right.
    sep = "&" if "?" in path else "?"
    r = c.get(f"{path}{sep}{param.replace(chr(0), '%00')}=a{bad}b&timeoutSeconds=1")
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        expect_refused(r)


PATH_PLACES = [
    ("GET", f"{WL}/a{{bad}}b"),
    ("PUT", f"{WL}/a{{bad}}b"),
    ("PATCH", f"{WL}/a{{bad}}b"),
    ("DELETE", f"{WL}/a{{bad}}b"),
    ("GET", f"{API}/namespaces/a{{bad}}b/workloads"),
    ("POST", f"{API}/namespaces/a{{bad}}b/workloads"),
    ("GET", f"{NS}/a{{bad}}b"),
    ("GET", f"{CL}/a{{bad}}b/status"),
    ("GET", "/v1/namespaces/a{bad}b/workloads"),
    ("POST", "/v1/namespaces/a{bad}b/workloads"),
    ("GET", "/v1/namespaces/team-a/workloads/a{bad}b"),
]


@pytest.mark.parametrize("method,template", PATH_PLACES)
@pytest.mark.parametrize("bad", URL_BAD, ids=["NUL", "CESU-8 surrogate", "invalid UTF-8"])
def test_bad_characters_in_names_and_namespaces_in_the_path_are_4xx(
    c: httpx.Client, method: str, template: str, bad: str
) -> None:
    body = json.dumps(workload("p")).encode() if method in ("POST", "PUT") else b"{}"
    ctype = MERGE if method == "PATCH" else JSON
    before = stored(c)
    r = c.request(method, template.replace("{bad}", bad), content=body, headers={"Content-Type": ctype})
    if bad != "%00" and method == "GET" and template.endswith("/workloads") and r.status_code == 200:
        # U+FFFD in a namespace: a list there is empty, as a list in any missing namespace is
        assert r.json()["items"] == [], r.text
    else:
        expect_refused(r, "NUL" if bad == "%00" else "")
    assert stored(c) == before


# ------------------------------------------------------------------ wrong JSON types in metadata

# field → a value of the wrong JSON type for it (hypothesis below tries the others)
WRONG_TYPES: dict[str, Any] = {
    "name": 5,
    "generateName": ["x"],
    "namespace": {"a": "b"},
    "uid": True,
    "resourceVersion": 7,
    "creationTimestamp": 1700000000,
    "deletionTimestamp": [],
    "selfLink": {},
    "labels": "x",
    "annotations": ["a", "b"],
    "finalizers": "example.com/f",
    "ownerReferences": {"uid": "x"},
    "managedFields": "x",
    "generation": "1",
    "deletionGracePeriodSeconds": 1.5,
}
LABEL_VALUE = ("labels", {"k": 5})
METADATA_ITSELF = ("", 5)


def _wrong(field: str, value: Any, name: str = "typed") -> dict[str, Any]:
    w = workload(name)
    if not field:
        w["metadata"] = value
    else:
        w["metadata"][field] = value
    return w


def _write(c: httpx.Client, verb: str, field: str, value: Any) -> httpx.Response:
    """Send metadata.<field> = value with one write verb (field "" is metadata itself)."""
    meta_patch: Any = value if not field else {field: value}
    if verb == "POST":
        return c.post(WL, json=_wrong(field, value))
    if verb == "POST cluster":
        return c.post(CL, json={"metadata": meta_patch if not field else {"name": "typed", field: value}})
    if verb == "POST namespace":
        return c.post(NS, json={"metadata": meta_patch if not field else {"name": "typed", field: value}})
    if verb in ("PUT", "PUT status"):
        path = KEEPER if verb == "PUT" else f"{EDGE}/status"
        current = c.get(path)
        assert current.status_code == 200, current.text
        obj = current.json()
        if not field:
            obj["metadata"] = value
        else:
            obj["metadata"][field] = value
        return c.put(path, json=obj)
    if verb in ("merge patch", "merge patch status"):
        path = KEEPER if verb == "merge patch" else f"{EDGE}/status"
        return send(c, "PATCH", path, json.dumps({"metadata": meta_patch}).encode(), MERGE)
    if verb == "JSON patch":
        pointer = "/metadata" + (f"/{field}" if field else "")
        return send(
            c, "PATCH", KEEPER, json.dumps([{"op": "add", "path": pointer, "value": value}]).encode(), JSONPATCH
        )
    if verb == "server-side apply":
        return send(
            c, "PATCH", f"{KEEPER}?fieldManager=hostile", json.dumps(_wrong(field, value, "keeper")).encode(), APPLY
        )
    if verb == "server-side apply (new)":
        return send(c, "PATCH", f"{WL}/typed?fieldManager=hostile", json.dumps(_wrong(field, value)).encode(), APPLY)
    if verb == "REST POST":
        return c.post(REST, json=_wrong(field, value))
    if verb == "REST what-if":
        return c.post("/v1/whatif", json={"workloads": [_wrong(field, value)]})
    raise AssertionError(verb)


WRITE_VERBS = [
    "POST",
    "PUT",
    "PUT status",
    "merge patch",
    "merge patch status",
    "JSON patch",
    "server-side apply",
    "server-side apply (new)",
    "REST POST",
    "REST what-if",
    "POST cluster",
    "POST namespace",
]
FIELD_CASES = [pytest.param(f, v, id=f) for f, v in WRONG_TYPES.items()] + [
    pytest.param(*LABEL_VALUE, id="a label value"),
    pytest.param(*METADATA_ITSELF, id="metadata itself"),
]


def _named(field: str, value: Any) -> str:
    if not field:
        return "metadata"
    if field == "labels" and isinstance(value, dict):
        return "metadata.labels.k"
    return f"metadata.{field}"


@pytest.mark.parametrize("verb", WRITE_VERBS)
@pytest.mark.parametrize("field,value", FIELD_CASES)
def test_a_wrong_json_type_in_any_metadata_field_is_refused_naming_it_on_every_write_verb(
    c: httpx.Client, verb: str, field: str, value: Any
) -> None:
    if verb in ("PUT", "PUT status", "JSON patch", "merge patch", "merge patch status") and field == "name":
        pass  # still must be refused: a name that is a number is not the URL's name
    refused_and_unchanged(c, lambda: _write(c, verb, field, value), _named(field, value))


def _wrong_for(field: str) -> st.SearchStrategy[Any]:
    """JSON values whose type is wrong for metadata.<field>."""
    scalars = st.one_of(st.integers(-(2**40), 2**40), st.booleans(), st.floats(-1e9, 1e9))
    strings = st.text(alphabet="abc-", min_size=1, max_size=6)
    containers = st.one_of(st.lists(scalars, max_size=2), st.dictionaries(strings, scalars, max_size=2))
    if field in ("labels", "annotations"):
        return st.one_of(
            scalars, strings, st.lists(strings, max_size=2), st.dictionaries(strings, scalars, min_size=1, max_size=2)
        )
    if field in ("finalizers",):
        return st.one_of(
            scalars, strings, st.dictionaries(strings, strings, max_size=2), st.lists(scalars, min_size=1, max_size=2)
        )
    if field in ("ownerReferences", "managedFields"):
        return st.one_of(
            scalars, strings, st.dictionaries(strings, strings, max_size=2), st.lists(scalars, min_size=1, max_size=2)
        )
    if field in ("generation", "deletionGracePeriodSeconds"):
        return st.one_of(st.booleans(), st.floats(-1e9, 1e9).filter(lambda f: f != int(f)), strings, containers)
    if not field:
        return st.one_of(scalars, strings, st.lists(scalars, max_size=2))
    return st.one_of(scalars, containers)  # string fields


@FUZZ
@given(data=st.data(), field=st.sampled_from([*WRONG_TYPES, ""]), verb=st.sampled_from(WRITE_VERBS))
def test_any_wrong_json_type_in_metadata_is_refused_on_any_write_verb(
    c: httpx.Client, data: st.DataObject, field: str, verb: str
) -> None:
    value = data.draw(_wrong_for(field), label="value")
    before = stored(c)
    body = expect_refused(_write(c, verb, field, value))
    assert "metadata" in said(body), body
    assert stored(c) == before


# ------------------------------------------------------------------ numbers and integers

ODD_QUERY_INTEGERS = [
    (WL, "limit", "²"),
    (WL, "limit", "５"),
    (WL, "limit", "9" * 5000),
    (WL, "limit", "-1"),
    (WL, "limit", "1e3"),
    (WL, "limit", "0x10"),
    (WL, "limit", " 1"),
    (WL, "resourceVersion", "²"),
    (WL, "resourceVersion", "9" * 5000),
    (WL + "?watch=true", "timeoutSeconds", "²"),
    (WL + "?watch=true", "timeoutSeconds", "9" * 5000),
    (WL + "?watch=true", "timeoutSeconds", "-5"),
    (WL + "?watch=true&timeoutSeconds=1", "resourceVersion", "-3"),
    ("/v1/workloads", "limit", "²"),
    ("/v1/workloads", "limit", "9" * 5000),
    ("/v1/workloads", "limit", "0"),
    ("/v1/namespaces/team-a/workloads", "limit", "-1"),
]


@pytest.mark.parametrize(
    "path,param,value", [pytest.param(p, n, v, id=f"{p.split('/')[1]} {n}={v[:8]}") for p, n, v in ODD_QUERY_INTEGERS]
)
def test_odd_integers_in_query_parameters_are_refused_naming_the_parameter(
    c: httpx.Client, path: str, param: str, value: str
) -> None:
    sep = "&" if "?" in path else "?"
    refused_and_unchanged(c, lambda: c.get(f"{path}{sep}{param}={value}"), param)


def test_delete_with_an_odd_grace_period_is_refused(c: httpx.Client) -> None:
    for value in ("²", "9" * 5000, "-1", "soon"):
        refused_and_unchanged(
            c, lambda value=value: c.delete(f"{KEEPER}?gracePeriodSeconds={value}"), "gracePeriodSeconds"
        )


def test_a_watch_with_a_huge_timeout_is_served_and_closed_like_any_other(c: httpx.Client) -> None:
    with c.stream("GET", f"{WL}?watch=true&timeoutSeconds=999999999999999999") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert c.get("/readyz").status_code == 200


ODD_NUMBERS = [
    pytest.param(b"9" * 5000, JSON, "out of range", id="5000-digit integer"),
    pytest.param(b"-" + b"9" * 5000, JSON, "out of range", id="5000-digit negative"),
    pytest.param(b"0." + b"9" * 5000, JSON, "too long", id="5000-digit fraction"),
    pytest.param(str(2**63).encode(), JSON, "out of range", id="2^63"),
    pytest.param(str(-(2**63) - 1).encode(), JSON, "out of range", id="-2^63-1"),
    pytest.param(b"1e400", JSON, "out of range", id="1e400"),
    pytest.param(b"NaN", JSON, "NaN is not a JSON number", id="NaN"),
    pytest.param(b"Infinity", JSON, "Infinity is not a JSON number", id="Infinity"),
    pytest.param(b"-Infinity", JSON, "Infinity is not a JSON number", id="-Infinity"),
    pytest.param(b".nan", YAML, "out of range", id="YAML .nan"),
    pytest.param(b"-.inf", YAML, "out of range", id="YAML -.inf"),
    pytest.param(b"99999999999999999999999", YAML, "out of range", id="YAML huge integer"),
]


@pytest.mark.parametrize("number,ctype,words", ODD_NUMBERS)
def test_numbers_json_cannot_carry_or_int64_cannot_hold_are_refused(
    c: httpx.Client, number: bytes, ctype: str, words: str
) -> None:
    if ctype == JSON:
        body = b'{"metadata":{"name":"num"},"spec":{"priority":' + number + b"}}"
    else:
        body = b"metadata: {name: num}\nspec: {priority: " + number + b"}\n"
    for method, path, ct in [("POST", WL, ctype), ("PUT", KEEPER, ctype), ("POST", REST, JSON)]:
        if path == REST and ctype != JSON:
            continue
        refused_and_unchanged(
            c,
            lambda method=method, path=path, ct=ct: send(c, method, path, body, ct),
            "spec.priority",
            words,
            codes=(400,),
        )
    if ctype == JSON:
        patch = b'{"spec":{"priority":' + number + b"}}"
        refused_and_unchanged(c, lambda: send(c, "PATCH", KEEPER, patch, MERGE), "spec.priority", words, codes=(400,))


@FUZZ
@given(n=st.one_of(st.integers(min_value=2**63), st.integers(max_value=-(2**63) - 1)))
def test_any_integer_outside_int64_is_refused_not_rounded(c: httpx.Client, n: int) -> None:
    body = b'{"spec":{"priority":' + str(n).encode() + b"}}"
    refused_and_unchanged(
        c, lambda: send(c, "PATCH", KEEPER, body, MERGE), "spec.priority", "out of range", codes=(400,)
    )


# ------------------------------------------------------------------ YAML tags

YAML_TAGS = [
    pytest.param(b"metadata:\n  name: !!binary aGVsbG8=\n", id="!!binary"),
    pytest.param(b"metadata: !!python/object/apply:os.system ['true']\n", id="!!python/object"),
    pytest.param(b"metadata: !custom {name: x}\n", id="!custom"),
    pytest.param(b"metadata: !!set {a, b}\n", id="!!set"),
    pytest.param(b"metadata: !!omap [{name: x}]\n", id="!!omap"),
    pytest.param(b"metadata: {name: x, creationTimestamp: !!timestamp 2001-12-14}\n", id="!!timestamp"),
]


@pytest.mark.parametrize("content", YAML_TAGS)
@pytest.mark.parametrize("method,path,ctype", YAML_ENDPOINTS)
def test_yaml_tags_are_refused_on_every_verb_that_takes_yaml(
    c: httpx.Client, content: bytes, method: str, path: str, ctype: str
) -> None:
    refused_and_unchanged(c, lambda: send(c, method, path, content, ctype), "YAML tags are not accepted", codes=(400,))


# ------------------------------------------------------------------ DELETE and its options

DELETE_OPTIONS = [
    ({"preconditions": {"uid": 5}}, "preconditions.uid"),
    ({"preconditions": {"resourceVersion": ["1"]}}, "preconditions.resourceVersion"),
    ({"preconditions": {"resourceVersion": 5}}, "preconditions.resourceVersion"),
    ({"preconditions": "x"}, "preconditions"),
    ({"preconditions": [1]}, "preconditions"),
    ({"preconditions": {"uid": "a\x00"}}, "preconditions.uid"),
    ({"gracePeriodSeconds": "x"}, "gracePeriodSeconds"),
    ({"gracePeriodSeconds": -1}, "gracePeriodSeconds"),
    ({"gracePeriodSeconds": True}, "gracePeriodSeconds"),
    ({"propagationPolicy": 5}, "propagationPolicy"),
    ({"propagationPolicy": "Sideways"}, "propagationPolicy"),
    ({"orphanDependents": "yes"}, "orphanDependents"),
    ({"dryRun": "All"}, "dryRun"),
    ({"dryRun": ["Some"]}, "dryRun"),
    ({"kind": "Pod"}, "kind"),
    ({"apiVersion": 1}, "apiVersion"),
    ([], "DeleteOptions"),
    ("x", "DeleteOptions"),
    (5, "DeleteOptions"),
]


@pytest.mark.parametrize("options,field", DELETE_OPTIONS, ids=[json.dumps(o)[:40] for o, _ in DELETE_OPTIONS])
def test_delete_with_odd_delete_options_is_refused_naming_the_field(c: httpx.Client, options: Any, field: str) -> None:
    refused_and_unchanged(c, lambda: send(c, "DELETE", KEEPER, json.dumps(options).encode(), JSON), field, codes=(400,))


def test_delete_options_with_dry_run_in_the_body_delete_nothing(c: httpx.Client) -> None:
    before = stored(c)
    r = send(
        c, "DELETE", KEEPER, json.dumps({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]}).encode(), JSON
    )
    assert r.status_code == 200, r.text
    assert stored(c) == before


def test_a_failing_precondition_is_a_conflict_that_deletes_nothing(c: httpx.Client) -> None:
    refused_and_unchanged(
        c,
        lambda: send(c, "DELETE", KEEPER, json.dumps({"preconditions": {"uid": "not-the-uid"}}).encode(), JSON),
        "Precondition failed",
        codes=(409,),
    )


@FUZZ
@given(
    options=st.dictionaries(
        st.sampled_from(
            ["preconditions", "gracePeriodSeconds", "propagationPolicy", "orphanDependents", "dryRun", "kind"]
        ),
        st.one_of(
            st.integers(-5, 5),
            st.text(max_size=5),
            st.lists(st.integers(), max_size=2),
            st.dictionaries(st.sampled_from(["uid", "resourceVersion"]), st.integers(), min_size=1),
        ),
        min_size=1,
    )
)
def test_any_mistyped_delete_options_are_refused_and_delete_nothing(c: httpx.Client, options: dict[str, Any]) -> None:
    # Well-typed options would delete the keeper: a precondition that fails keeps it whatever
    # else was drawn (409), unless the drawn preconditions are themselves mistyped (400).
    options.setdefault("preconditions", {"uid": "not-the-uid"})
    before = stored(c)
    r = send(c, "DELETE", KEEPER, json.dumps(options).encode(), JSON)
    expect_refused(r, codes=(400, 409))
    assert stored(c) == before


# ------------------------------------------------------------------ JSON patch errors


def test_a_failing_json_patch_test_says_what_differed_in_json_not_python(c: httpx.Client) -> None:
    ops = [{"op": "test", "path": "/spec/replicas", "value": "1"}]
    before = stored(c)
    body = expect_refused(send(c, "PATCH", KEEPER, json.dumps(ops).encode(), JSONPATCH), "spec.replicas", codes=(422,))
    assert 'the value is 1, not "1"' in body["message"], body["message"]
    assert "<class" not in body["message"] and "{'" not in body["message"]
    missing = [{"op": "replace", "path": "/spec/nope/deeper", "value": 1}]
    body = expect_refused(
        send(c, "PATCH", KEEPER, json.dumps(missing).encode(), JSONPATCH), "/spec/nope/deeper", codes=(422,)
    )
    assert "does not exist" in body["message"] and "{'" not in body["message"], body["message"]
    assert stored(c) == before


@pytest.mark.parametrize(
    "ops,words",
    [
        ({"op": "add"}, "JSON array"),
        ([5], "operation 0"),
        ([{"op": "frob", "path": "/spec"}], "op: must be one of"),
        ([{"op": "add", "value": 1}], "path is required"),
        ([{"op": "add", "path": 5, "value": 1}], "path: must be a string"),
        ([{"op": "add", "path": "spec", "value": 1}], "must start with"),
        ([{"op": "add", "path": "/spec/~2", "value": 1}], "~0"),
        ([{"op": "add", "path": "/spec/x"}], "value is required"),
        ([{"op": "copy", "path": "/spec/x"}], "from is required"),
        ([{"op": "copy", "from": "/nope", "path": "/spec/x"}], "does not exist"),
        ([{"op": "move", "from": "/spec", "path": "/spec/x"}], "own children"),
        ([{"op": "add", "path": "/spec/manifests/99", "value": {}}], "out of range"),
        ([{"op": "remove", "path": "/spec/manifests/99999999999999999999"}], "does not exist"),
        ([{"op": "replace", "path": "/spec/manifests/-", "value": {}}], "operation 0"),
        ([{"op": "replace", "path": "", "value": 5}], "not an object"),
    ],
    ids=lambda v: json.dumps(v)[:40] if not isinstance(v, str) else v,
)
def test_malformed_json_patches_are_refused_naming_the_operation(c: httpx.Client, ops: Any, words: str) -> None:
    refused_and_unchanged(c, lambda: send(c, "PATCH", KEEPER, json.dumps(ops).encode(), JSONPATCH), words)


def test_server_side_apply_enforces_the_field_manager_rules(c: httpx.Client) -> None:
    body = json.dumps(workload("keeper")).encode()
    refused_and_unchanged(
        c, lambda: send(c, "PATCH", f"{KEEPER}?fieldManager={'m' * 129}", body, APPLY), "fieldManager", "128"
    )
    refused_and_unchanged(c, lambda: send(c, "PATCH", KEEPER, body, APPLY), "fieldManager")
    refused_and_unchanged(c, lambda: send(c, "PATCH", f"{KEEPER}?fieldManager=a%00b", body, APPLY), "fieldManager")
    refused_and_unchanged(c, lambda: send(c, "PATCH", f"{KEEPER}?fieldManager=a%0Ab", body, APPLY), "fieldManager")
    refused_and_unchanged(c, lambda: send(c, "PATCH", f"{KEEPER}?fieldManager=m&force=maybe", body, APPLY), "force")
    refused_and_unchanged(c, lambda: c.post(f"{WL}?fieldManager={'m' * 129}", json=workload("fm")), "fieldManager")


# ------------------------------------------------------------------ protobuf


def _ld(num: int, payload: bytes) -> bytes:
    """A protobuf length-delimited field."""
    n, size = len(payload), b""
    while True:
        b, n = n & 0x7F, n >> 7
        size += bytes([b | 0x80 if n else b])
        if not n:
            break
    return bytes([(num << 3) | 2]) + size + payload


def _namespace_pb(meta: bytes) -> bytes:
    return b"k8s\x00" + _ld(2, _ld(1, meta))


PROTOBUF_GARBAGE = [
    pytest.param(b"", "magic", id="empty"),
    pytest.param(b"hello", "magic", id="no magic"),
    pytest.param(b"k8s\x00", "metadata.name", id="magic only"),
    pytest.param(b"k8s\x00\x12\xff", "truncated", id="truncated varint"),
    pytest.param(b"k8s\x00\x12\x10ab", "truncated", id="truncated field"),
    pytest.param(b"k8s\x00\x13", "wire type", id="wire type 3"),
    pytest.param(b"k8s\x00\x11\x00", "truncated", id="truncated fixed64"),
    pytest.param(b"k8s\x00\x12" + b"\xff" * 20 + b"\x01", "varint", id="overlong varint"),
    pytest.param(b"k8s\x00\x10\x05", "field 2", id="raw is a varint"),
    pytest.param(b"k8s\x00" + _ld(2, b"\x08\x05"), "metadata", id="metadata is a varint"),
    pytest.param(_namespace_pb(b"\x08\x05"), "metadata.name", id="name is a varint"),
    pytest.param(_namespace_pb(_ld(1, b"\xff\xfe")), "UTF-8", id="name not UTF-8"),
    pytest.param(_namespace_pb(_ld(1, b"\xed\xa0\x80")), "UTF-8", id="name is an encoded surrogate"),
    pytest.param(_namespace_pb(_ld(1, b"a\x00b")), "metadata.name", id="name with NUL"),
    pytest.param(_namespace_pb(_ld(1, b"pb") + b"\x58\x05"), "metadata.labels", id="labels is a varint"),
    pytest.param(_namespace_pb(_ld(1, b"pb") + _ld(11, b"\x08\x05")), "metadata.labels key", id="label key a varint"),
    pytest.param(
        _namespace_pb(_ld(1, b"pb") + _ld(12, _ld(1, b"k") + _ld(2, b"\x00"))),
        "metadata.annotations.k",
        id="annotation NUL",
    ),
    pytest.param(_namespace_pb(_ld(1, b"Bad_Name")), "metadata.name", id="invalid name"),
]


@pytest.mark.parametrize("content,words", PROTOBUF_GARBAGE)
def test_malformed_protobuf_namespaces_are_refused_saying_what_is_wrong(
    c: httpx.Client, content: bytes, words: str
) -> None:
    refused_and_unchanged(c, lambda: send(c, "POST", NS, content, PROTOBUF), words)


@FUZZ
@given(garbage=st.binary(max_size=300), magic=st.booleans())
def test_any_protobuf_garbage_is_refused_with_a_status(c: httpx.Client, garbage: bytes, magic: bool) -> None:
    body = (b"k8s\x00" if magic else b"") + garbage
    refused_and_unchanged(c, lambda: send(c, "POST", NS, body, PROTOBUF))


def test_protobuf_is_refused_where_the_hub_does_not_decode_it(c: httpx.Client) -> None:
    refused_and_unchanged(
        c, lambda: send(c, "POST", WL, _namespace_pb(_ld(1, b"x")), PROTOBUF), "unknown format", codes=(415,)
    )
    refused_and_unchanged(
        c, lambda: send(c, "PUT", KEEPER, b"\xa0", "application/cbor"), "unknown format", codes=(415,)
    )


# ------------------------------------------------------------------ the unauthenticated join endpoint

JOIN_GARBAGE = [
    pytest.param(b"hello", JSON, "not valid JSON", id="not JSON"),
    pytest.param(b"", JSON, "empty", id="empty"),
    pytest.param(b"[1]", JSON, "JSON object", id="array"),
    pytest.param(b"null", JSON, "JSON object", id="null"),
    pytest.param(b"a=b", "application/x-www-form-urlencoded", "not valid JSON", id="form"),
    pytest.param(b'{"joinToken":5,"clusterName":[]}', JSON, "joinToken", id="wrong types"),
    pytest.param(b'{"joinToken":"t"}', JSON, "clusterName", id="no cluster name"),
    pytest.param(b'{"joinToken":"a\\u0000","clusterName":"c"}', JSON, "joinToken", id="NUL token"),
    pytest.param(b'{"joinToken":"a","clusterName":"c\\u0000"}', JSON, "clusterName", id="NUL cluster"),
    pytest.param(b'{"joinToken":"\\ud800","clusterName":"c"}', JSON, "joinToken", id="surrogate token"),
    pytest.param(b'{"joinToken":"t","clusterName":"\\udfff"}', JSON, "clusterName", id="surrogate cluster"),
    pytest.param(b'{"joinToken":NaN,"clusterName":"c"}', JSON, "NaN", id="NaN"),
    pytest.param(b'{"joinToken":' + b"9" * 5000 + b',"clusterName":"c"}', JSON, "out of range", id="5000 digits"),
    pytest.param(b"[" * 5000 + b"]" * 5000, JSON, "nested too deeply", id="deep"),
    pytest.param(b'{"joinToken":"' + b"a" * (4 * 1024 * 1024) + b'"}', JSON, "exceeds the limit", id="4 MiB"),
]


@pytest.mark.parametrize("content,ctype,words", JOIN_GARBAGE)
def test_unauthenticated_join_garbage_is_refused_with_a_status(
    c: httpx.Client, anon: httpx.Client, content: bytes, ctype: str, words: str
) -> None:
    before = stored(c)
    expect_refused(send(anon, "POST", JOIN, content, ctype), words)
    assert stored(c) == before


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=10,
)


@FUZZ
@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries({"joinToken": json_values, "clusterName": json_values}),
    )
)
def test_any_json_sent_to_join_without_a_valid_token_is_refused_and_registers_nothing(
    c: httpx.Client, anon: httpx.Client, body: Any
) -> None:
    before = stored(c)
    r = send(anon, "POST", JOIN, json.dumps(body).encode(), JSON)
    expect_refused(r, codes=(400, 401, 413, 429))
    assert stored(c) == before


# ------------------------------------------------------------------ REST and unknown paths


@pytest.mark.parametrize(
    "method,path,code",
    [
        ("GET", "/v1/nope", 404),
        ("GET", "/nope", 404),
        ("DELETE", "/v1/clusters", 405),
        ("PUT", "/v1/whatif", 405),
        ("OPTIONS", NS, 405),
        ("GET", "/apis/nope", 404),
        ("GET", f"{NS}/team-a/junk", 404),
        ("GET", f"{API}/namespaces/team-a/widgets", 404),
    ],
)
def test_unknown_paths_and_methods_answer_a_status_not_fastapis_detail(
    c: httpx.Client, method: str, path: str, code: int
) -> None:
    body = expect_refused(c.request(method, path), codes=(code,))
    assert "detail" not in body or isinstance(body["detail"], dict)
    assert (
        ("could not find" in body["message"] or "not found" in body["message"])
        if code == 404
        else method in body["message"]
    )


def test_rest_wrong_types_and_odd_values_name_the_field(c: httpx.Client) -> None:
    for path, words in [
        ("/v1/workloads?explain=maybe", "explain"),
        ("/v1/workloads?limit=%C2%B2", "limit"),
        ("/v1/workloads?continue=abc", "continue"),
        ("/v1/workloads?continue=" + "A" * 9000, "continue"),
    ]:
        refused_and_unchanged(c, lambda path=path: c.get(path), words)
    refused_and_unchanged(
        c, lambda: c.post("/v1/whatif?fieldValidation=Loose", json={"workloads": [workload("w")]}), "fieldValidation"
    )
    refused_and_unchanged(c, lambda: c.post("/v1/whatif", json={"workloads": [5]}), "workloads[0]")
    refused_and_unchanged(c, lambda: c.post("/v1/whatif", json={"workloads": [workload("w")], "profile": 5}), "profile")


def _warning_text(raw: bytes) -> str:
    """The text of one `299 - "text"` header, parsed as kubectl parses it: a quoted string in
    which only \\" and \\\\ are escapes, and no bare quote."""
    value = raw.decode("utf-8")
    assert value.startswith('299 - "') and value.endswith('"'), value
    inner = value[len('299 - "') : -1]
    assert re.fullmatch(r'(?:[^"\\]|\\.)*', inner), f"unescaped quote in {value!r}"
    return re.sub(r"\\(.)", r"\1", inner)


def test_warnings_with_quotes_newlines_and_non_ascii_field_names_are_sent_escaped(c: httpx.Client) -> None:
    # Unknown fields are echoed in Warning headers, and a field name is client input.
    patch = {"spec": {'q"uote\\': 1, "new\nline": 2, "спец": 3}}
    r = send(c, "PATCH", KEEPER, json.dumps(patch).encode(), MERGE)
    assert r.status_code == 200, r.text
    texts = {_warning_text(v) for k, v in r.headers.raw if k.lower() == b"warning"}
    assert texts == {
        'unknown field "spec.q"uote\\"',
        'unknown field "spec.new line"',
        'unknown field "spec.спец"',
    }, texts


# ------------------------------------------------------------------ afterwards


def test_after_all_of_it_the_hub_is_ready_and_its_memory_bounded(target: Target, c: httpx.Client) -> None:
    assert c.get("/readyz").status_code == 200
    assert keeper(c)["spec"]["gpu"]["count"] == 2, "the keeper workload is unchanged"
    names = [i["metadata"]["name"] for i in c.get(WL).json()["items"]]
    assert names == ["keeper"], names
    assert (c.get(CL).json()["items"], c.get(NS).json()["items"]) == target.clusters_and_namespaces
    growth = target.rss() - target.rss_before
    assert growth < RSS_GROWTH_LIMIT, f"the hub grew by {growth / 2**20:.0f} MiB"
