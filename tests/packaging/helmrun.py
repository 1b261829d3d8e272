"""The real `helm` (built by `make helm`) for the chart tests: rendering without a cluster
(tests/packaging/test_helm_*_chart.py) and installing into one lab spoke with the apiserver's
authorizer asked what a ServiceAccount may do (tests/lab/test_helm_*_install.py,
tests/agent/test_agent_lab_as_chart_sa.py). One copy of each helper, shared by all of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetplane_lab.fixtures import require_helm
from fleetplane_testing import wait_until

ROOT = Path(__file__).resolve().parents[2]
HUB_CHART = ROOT / "deploy" / "helm" / "fleetplane-hub"
AGENT_CHART = ROOT / "deploy" / "helm" / "fleetplane-agent"

Objects = dict[tuple[str, str], dict[str, Any]]
Helm = Callable[..., subprocess.CompletedProcess[str]]


def helm(*args: str | Path, home: Path, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the built helm with its config, cache and data under `home` (never the user's)."""
    env = dict(
        os.environ,
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_DATA_HOME=str(home / "data"),
    )
    out = subprocess.run(
        [str(require_helm()), *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and out.returncode != 0:
        raise AssertionError(f"helm {' '.join(map(str, args))} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def lints_clean(chart: Path, *args: str, home: Path) -> None:
    """`helm lint --strict` passes with no warning and no error."""
    out = helm("lint", "--strict", chart, *args, home=home).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out, out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


def sets(values: dict[str, str]) -> list[str]:
    """--set-string for each value: helm's --set would read 123, true or 0x10 as a number or bool."""
    return [a for k, v in values.items() for a in ("--set-string", f"{k}={v}")]


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind_and_name(docs: list[dict[str, Any]]) -> Objects:
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert len(objects) == len(docs), "no two objects share a kind and name"
    return objects


def render(chart: Path, release: str, namespace: str, values: dict[str, str], *extra: str, home: Path) -> Objects:
    """`helm template` output, parsed, by (kind, name). `values` are strings; typed ones go in `extra`."""
    out = helm("template", release, chart, "--namespace", namespace, *sets(values), *extra, home=home)
    return by_kind_and_name(documents(out.stdout))


def refused(chart: Path, release: str, namespace: str, values: dict[str, str], *extra: str, home: Path) -> str:
    """helm's error for values it must refuse (it fails the test when helm accepts them)."""
    out = helm("template", release, chart, "--namespace", namespace, *sets(values), *extra, home=home, check=False)
    assert out.returncode != 0, f"helm accepted bad values: {values} {extra}"
    return out.stderr


# --- One lab spoke with helm and kubectl against it (tests/lab, tests/agent) ----------------


@pytest.fixture(scope="module")
def spoke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One spoke, started as tests/lab/conftest.py starts them (or the first external cluster)."""
    from fleetplane_lab import Lab, default_spokes
    from fleetplane_lab.fixtures import SpokeHandle, external_kubeconfigs, lab_backend, require_lab_binaries

    external = external_kubeconfigs()
    if external is not None:
        yield external[0]
        return
    require_lab_binaries()
    require_helm()
    lab = Lab(tmp_path_factory.mktemp("lab"), spokes=default_spokes(1), with_hub=False, backend=lab_backend())
    with lab:
        yield next(SpokeHandle(n, s.kubeconfig, list(s.nodes)) for n, s in lab.spokes.items())


@pytest.fixture(scope="module")
def kubectl(spoke: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.hubtest import Kubectl

    return Kubectl(Path(spoke.kubeconfig), tmp_path_factory.mktemp("kubecache"))


@pytest.fixture(scope="module", name="helm")
def helm_on_spoke(spoke: Any, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm against the spoke, with its own config, cache and data directories."""
    home = tmp_path_factory.mktemp("helm")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return helm(*args, "--kubeconfig", spoke.kubeconfig, home=home, check=check)

    return run


def secret_data(kubectl: Any, name: str, namespace: str) -> dict[str, str]:
    data = kubectl.json("get", "secret", name, "-n", namespace).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def can_i(kubectl: Any, subject: str, verb: str, resource: str, namespace: str = "", name: str = "") -> bool:
    """Ask the apiserver's authorizer (a SubjectAccessReview) whether a ServiceAccount
    (`system:serviceaccount:<ns>:<name>`) may do `verb` on `resource` ("plural.group", or
    "plural" for the core group, "plural/subresource" for a subresource); an empty namespace
    means every namespace. Works for kinds whose CRDs are not installed."""
    resource, _, subresource = resource.partition("/")
    plural, _, group = resource.partition(".")
    sa_namespace = subject.split(":")[2]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": subject,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}", "system:authenticated"],
            "resourceAttributes": {
                "verb": verb,
                "group": group,
                "resource": plural,
                "subresource": subresource,
                "namespace": namespace,
                "name": name,
            },
        },
    }
    answer = json.loads(kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)))
    return bool(answer["status"].get("allowed"))


# --- The operators' CRDs (CloudNativePG, cert-manager, Prometheus Operator) ----------------

# The operators' own CRDs, from their Go modules at pinned versions: (module, version, file).
OPERATOR_CRDS = [
    ("github.com/cloudnative-pg/cloudnative-pg", "v1.25.1", "config/crd/bases/postgresql.cnpg.io_clusters.yaml"),
    ("github.com/cert-manager/cert-manager", "v1.17.2", "deploy/crds/crd-certificates.yaml"),
    (
        "github.com/prometheus-operator/prometheus-operator",
        "v0.80.1",
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
    ),
    (
        "github.com/prometheus-operator/prometheus-operator",
        "v0.80.1",
        "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
    ),
]


def operator_crds() -> list[dict[str, Any]]:
    """The CRDs of CloudNativePG, cert-manager and the Prometheus Operator (ServiceMonitor,
    PodMonitor), as they ship them.

    Taken from each project's Go module (the module proxy serves the whole repository) into a
    cache outside the repository keyed by the versions, like the lab's binaries; a no-op when
    present. Labels and annotations are dropped: cert-manager's carry its Helm chart's
    template text."""
    cache = Path(os.environ.get("FLEETPLANE_CACHE", Path.home() / ".cache" / "fleetplane"))
    # Keyed by the versions and the files (a CRD added to the list is a new cache).
    modules = dict.fromkeys(f"{m.rsplit('/', 1)[1]}-{v}" for m, v, _ in OPERATOR_CRDS)
    files = hashlib.sha256(repr(OPERATOR_CRDS).encode()).hexdigest()[:8]
    folder = cache / ("operator-crds-" + "-".join(modules) + f"-{files}")
    if not folder.is_dir():
        if shutil.which("go") is None:
            pytest.fail("the operators' CRDs come from their Go modules: install Go (as for `make k8s-binaries`)")
        work = cache / "build-work" / "operator-crds"
        work.mkdir(parents=True, exist_ok=True)
        crds = []
        for module, version, path in OPERATOR_CRDS:
            out = subprocess.run(
                ["go", "mod", "download", "-json", f"{module}@{version}"],
                cwd=work,
                env={**os.environ, "GOFLAGS": "-mod=mod", "GOSUMDB": "off"},  # as deploy/local/build-k8s.sh
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert out.returncode == 0, f"go mod download {module}@{version}: {out.stdout}{out.stderr}"
            with zipfile.ZipFile(json.loads(out.stdout)["Zip"]) as z:
                crd = yaml.safe_load(z.read(f"{module}@{version}/{path}"))
            crd["metadata"] = {"name": crd["metadata"]["name"]}
            crds.append(crd)
        tmp = folder.parent / f"{folder.name}.tmp"
        tmp.mkdir(exist_ok=True)
        for crd in crds:
            (tmp / f"{crd['metadata']['name']}.json").write_text(json.dumps(crd))
        tmp.rename(folder)
    return [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))]


def contained(given: Any, served: Any) -> bool:
    """Is every field the chart gave still there, with its value, in what the apiserver serves?
    (A field a CRD does not know is pruned; defaults the CRD adds are allowed.)"""
    if isinstance(given, dict):
        return isinstance(served, dict) and all(k in served and contained(v, served[k]) for k, v in given.items())
    if isinstance(given, list):
        return isinstance(served, list) and len(given) == len(served) and all(map(contained, given, served))
    return bool(given == served)


@pytest.fixture(scope="module")
def crds(kubectl: Any) -> None:
    """The operators' CRDs registered in the spoke and established."""
    definitions = operator_crds()
    for crd in definitions:
        # create, not apply: CloudNativePG's CRD is too big for apply's last-applied annotation.
        kubectl("create", "-f", "-", input=json.dumps({k: v for k, v in crd.items() if k != "status"}))

    def established(name: str) -> bool:
        conditions = (kubectl.json("get", "crd", name).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    for crd in definitions:
        name = crd["metadata"]["name"]
        wait_until(f"CRD {name} is established", lambda n=name: established(n), timeout=60)
