"""Server warnings reach the person at the terminal: the real kubectl prints the hub's `Warning`
headers (`299 - "text"`, quotes and backslashes escaped as kube-apiserver escapes them).

Before the escaping, kubectl could not parse the header (the warning text itself holds quotes:
`unknown field "spec.bogus"`) and dropped it, so a typo in a patch only said "patched (no change)".
"""

from __future__ import annotations

import json

import pytest

from tests.hubtest import Kubectl, manifest, workload


@pytest.fixture(scope="module", autouse=True)
def namespace(kubectl: Kubectl) -> str:
    kubectl("create", "namespace", "team-a")
    kubectl("create", "-f", "-", input=manifest(workload("warned", gpus=1)))
    return "team-a"


def test_an_unknown_field_in_a_merge_patch_is_shown_as_a_warning(kubectl: Kubectl) -> None:
    out = kubectl.run("patch", "wl", "warned", "-n", "team-a", "--type=merge", "-p", '{"spec":{"bogus":1}}')
    assert 'Warning: unknown field "spec.bogus"' in out.stderr, out.stderr
    assert "patched (no change)" in out.stdout, out.stdout
    assert "bogus" not in kubectl("get", "wl", "warned", "-n", "team-a", "-o", "json")


def test_an_unknown_field_in_a_json_patch_is_shown_as_a_warning(kubectl: Kubectl) -> None:
    patch = json.dumps(
        [
            {"op": "add", "path": "/spec/typo", "value": 2},
            {"op": "add", "path": "/spec/priority", "value": 4},
        ]  # optional: absent until set
    )
    out = kubectl.run("patch", "wl", "warned", "-n", "team-a", "--type=json", "-p", patch)
    assert 'Warning: unknown field "spec.typo"' in out.stderr, out.stderr
    assert kubectl.json("get", "wl", "warned", "-n", "team-a")["spec"]["priority"] == 4


def test_create_with_validate_warn_shows_every_unknown_field(kubectl: Kubectl) -> None:
    body = workload("typos", gpus=1)
    body["spec"]["gpu"]["modle"] = "H100"
    body["spec"]["replicaz"] = 2
    out = kubectl.run("create", "--validate=warn", "-f", "-", input=manifest(body))
    assert out.returncode == 0, out.stderr
    assert 'Warning: unknown field "spec.gpu.modle"' in out.stderr, out.stderr
    assert 'Warning: unknown field "spec.replicaz"' in out.stderr, out.stderr
    assert "workload.fleetplane.io/typos created" in out.stdout


def test_a_field_name_with_quotes_and_backslashes_is_shown_as_it_was_sent(kubectl: Kubectl) -> None:
    patch = json.dumps({"spec": {'say "hi"\\now': 1}})
    out = kubectl.run("patch", "wl", "warned", "-n", "team-a", "--type=merge", "-p", patch)
    assert 'Warning: unknown field "spec.say "hi"\\now"' in out.stderr, out.stderr
