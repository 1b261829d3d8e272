"""`helm install` of the hub chart into ONE real lab spoke (real kube-apiserver, RBAC on) with
every feature on: CloudNativePG Cluster, cert-manager Certificate, ServiceMonitor, 2 replicas,
both Jobs. The apiserver accepts every object and serves it back; the token bootstrap script
from the installed ConfigMap, run as the Job's ServiceAccount (a TokenRequest token) against a
real Postgres, mints tokens the hub's database accepts and stores them in the one Secret it may
touch; the hub container's command, environment and mounts from the installed Deployment,
run here, serve the mounted certificate and take those tokens; `helm upgrade` changes the
replicas and keeps the tokens; `helm uninstall` removes all but the kept database Cluster and
tokens Secret. A second release with an external Postgres migrates before its install.

The CloudNativePG, cert-manager and Prometheus Operator CRDs are the projects' own (from their
Go modules at pinned versions), so the apiserver validates the chart's objects against their
real schemas. SIMULATED: no operator runs to reconcile them, the lab's nodes are kwok's, so no
hub container runs in a pod, and the hook Jobs' pods are marked Succeeded by kwok's stages
(fleetplane_lab/kwok-stages.yaml).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fleetplane_testing import wait_until
from fleetplane_testing.ports import free_port
from fleetplane_testing.processes import stop_process
from hub.store.database import sqlalchemy_url
from hub.store.store import Store
from hub.store.tokens import list_tokens, lookup_token
from hub.web.tls import ensure_serving_cert
from tests.hubtest import Kubectl
from tests.packaging import helmrun
from tests.packaging.helmrun import HUB_CHART as CHART
from tests.packaging.helmrun import ROOT, Helm, can_i, contained

pytestmark = pytest.mark.lab

# One lab spoke, kubectl and helm against it (module-scoped fixtures).
spoke, kubectl, helm, crds = helmrun.spoke, helmrun.kubectl, helmrun.helm_on_spoke, helmrun.crds

NS = "fleetplane"
RELEASE = "hub"
FEATURES = [
    "--set",
    "postgresql.cloudnativepg.enabled=true,tls.certManager.enabled=true,serviceMonitor.enabled=true",
    "--set-string",
    "tls.certManager.issuerRef.name=fleet-ca",
    # The lab's nodes all carry the GPU taint; the hook Jobs must be schedulable for helm to go on.
    "--set-string",
    "tolerations[0].key=nvidia.com/gpu,tolerations[0].operator=Exists,tolerations[0].effect=NoSchedule",
]
BOOTSTRAP_SA = f"system:serviceaccount:{NS}:fleetplane-hub-bootstrap"
RELEASED = [
    ("serviceaccount", "fleetplane-hub"),
    ("deployment.apps", "fleetplane-hub"),
    ("poddisruptionbudget.policy", "fleetplane-hub"),
    ("service", "fleetplane-hub"),
    ("serviceaccount", "fleetplane-hub-bootstrap"),
    ("role.rbac.authorization.k8s.io", "fleetplane-hub-bootstrap"),
    ("rolebinding.rbac.authorization.k8s.io", "fleetplane-hub-bootstrap"),
    ("configmap", "fleetplane-hub-bootstrap"),
    ("certificate.cert-manager.io", "fleetplane-hub"),
    ("servicemonitor.monitoring.coreos.com", "fleetplane-hub"),
]
KEPT = [
    ("secret", "fleetplane-hub-tokens"),
    ("secret", "fleetplane-hub-tokens-metrics"),
    ("cluster.postgresql.cnpg.io", "fleetplane-hub-db"),
]


@pytest.fixture(scope="module")
def installed(crds: None, helm: Helm, kubectl: Kubectl) -> Iterator[None]:
    kubectl("create", "namespace", NS)
    helm("install", RELEASE, str(CHART), "--namespace", NS, *FEATURES, "--set", "replicas=2", "--timeout", "3m")
    yield
    helm("uninstall", RELEASE, "--namespace", NS, check=False)


def secret_data(kubectl: Kubectl, name: str) -> dict[str, str]:
    return helmrun.secret_data(kubectl, name, NS)


def exists(kubectl: Kubectl, kind: str, name: str) -> bool:
    return bool(kubectl.run("get", kind, name, "-n", NS, "--ignore-not-found", "-o", "name").stdout.strip())


def test_helm_install_with_every_feature_is_accepted_and_every_object_comes_back(
    installed: None, helm: Helm, kubectl: Kubectl
) -> None:
    status = json.loads(helm("status", RELEASE, "--namespace", NS, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    for kind, name in RELEASED + KEPT:
        obj = kubectl.json("get", kind, name, "-n", NS)
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE, (kind, name)
    deployment = kubectl.json("get", "deployment", "fleetplane-hub", "-n", NS)
    assert deployment["spec"]["replicas"] == 2
    [hub] = deployment["spec"]["template"]["spec"]["containers"]
    url = next(e for e in hub["env"] if e["name"] == "FLEETPLANE_DATABASE_URL")
    assert url["valueFrom"]["secretKeyRef"] == {"name": "fleetplane-hub-db-app", "key": "uri"}
    cluster = kubectl.json("get", "cluster.postgresql.cnpg.io", "fleetplane-hub-db", "-n", NS)
    assert cluster["spec"]["instances"] == 2
    cert = kubectl.json("get", "certificate.cert-manager.io", "fleetplane-hub", "-n", NS)
    assert cert["spec"]["issuerRef"]["name"] == "fleet-ca"
    # The operators' kinds were validated against their real schemas; nothing was pruned.
    rendered = {
        (d["kind"], d["metadata"]["name"]): d
        for d in yaml.safe_load_all(helm("get", "manifest", RELEASE, "--namespace", NS).stdout)
        if d
    }
    for kind, name in [
        ("Cluster", "fleetplane-hub-db"),
        ("Certificate", "fleetplane-hub"),
        ("ServiceMonitor", "fleetplane-hub"),
    ]:
        given = rendered[kind, name]
        served = kubectl.json("get", f"{kind.lower()}.{given['apiVersion'].split('/')[0]}", name, "-n", NS)
        assert contained(given["spec"], served["spec"]), f"{kind} {name}: the apiserver kept {served['spec']}"
    # The hooks ran (their pods were completed by kwok: SIMULATED) and the Jobs are kept.
    job = kubectl.json("get", "job", "fleetplane-hub-token-bootstrap", "-n", NS)
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    assert (job.get("status") or {}).get("succeeded") == 1
    assert not exists(kubectl, "job", "fleetplane-hub-migrate"), "CloudNativePG: no pre-install migration"


def test_the_bootstrap_service_account_may_touch_the_tokens_secret_only(installed: None, kubectl: Kubectl) -> None:
    def may(verb: str, resource: str, namespace: str = "", name: str = "") -> bool:
        return can_i(kubectl, BOOTSTRAP_SA, verb, resource, namespace, name)

    for secret in ("fleetplane-hub-tokens", "fleetplane-hub-tokens-metrics"):
        assert may("get", "secrets", NS, secret) and may("patch", "secrets", NS, secret)
    for verb, resource, *where in [
        ("get", "secrets", NS, "fleetplane-hub-db-app"),  # the database password
        ("get", "secrets", NS, "fleetplane-hub-tls"),
        ("list", "secrets", NS),
        ("create", "secrets", NS),
        ("delete", "secrets", NS, "fleetplane-hub-tokens"),
        ("update", "secrets", NS, "fleetplane-hub-tokens"),
        ("get", "secrets", "kube-system"),
        ("create", "pods", NS),
    ]:
        assert not may(verb, resource, *where), f"{verb} {resource} {where} must be refused"
    # The hub's own pods call no Kubernetes API: their ServiceAccount may do nothing.
    hub_sa = f"system:serviceaccount:{NS}:fleetplane-hub"
    assert not can_i(kubectl, hub_sa, "get", "secrets", NS, "fleetplane-hub-tokens")
    assert not can_i(kubectl, hub_sa, "list", "pods", NS)


def api_of(kubeconfig: str) -> tuple[str, str]:
    """The apiserver URL and its CA (PEM) from a kubeconfig."""
    cluster = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]
    if "certificate-authority-data" in cluster:
        return cluster["server"], base64.b64decode(cluster["certificate-authority-data"]).decode()
    return cluster["server"], Path(cluster["certificate-authority"]).read_text()


def run_bootstrap(
    kubectl: Kubectl, kubeconfig: str, database_url: str, tmp: Path, *, sa: str = "fleetplane-hub-bootstrap"
) -> subprocess.CompletedProcess[str]:
    """The installed ConfigMap's script, run as the Job would run it: as the Job's
    ServiceAccount (a TokenRequest token from the real apiserver), against a real Postgres."""
    script = tmp / "token-bootstrap.py"
    script.write_text(
        kubectl.json("get", "configmap", "fleetplane-hub-bootstrap", "-n", NS)["data"]["token-bootstrap.py"]
    )
    sa_dir = tmp / "serviceaccount"
    sa_dir.mkdir(exist_ok=True)
    (sa_dir / "token").write_text(kubectl("create", "token", sa, "-n", NS).strip())
    server, ca = api_of(kubeconfig)
    (sa_dir / "ca.crt").write_text(ca)
    job = kubectl.json("get", "job", "fleetplane-hub-token-bootstrap", "-n", NS)
    [container] = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e and e["name"] != "HOME"}
    out = subprocess.run(
        [sys.executable, str(script)],
        env={
            **os.environ,
            **env,
            "FLEETPLANE_DATABASE_URL": database_url,
            "SA_DIR": str(sa_dir),
            "KUBE_API": server,
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out


def bootstrap(kubectl: Kubectl, kubeconfig: str, database_url: str, tmp: Path) -> str:
    out = run_bootstrap(kubectl, kubeconfig, database_url, tmp)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def stored_tokens(kubectl: Kubectl) -> dict[str, str]:
    """The admin token's Secret and the metrics token's, merged (each holds its one key)."""
    admin, metrics = (
        secret_data(kubectl, "fleetplane-hub-tokens"),
        secret_data(kubectl, "fleetplane-hub-tokens-metrics"),
    )
    assert set(admin) <= {"admin-token"} and set(metrics) <= {"metrics-token"}, "each token in its own Secret"
    return {**admin, **metrics}


async def kinds_of(database_url: str, tokens: dict[str, str]) -> dict[str, str | None]:
    store = Store(sqlalchemy_url(database_url), pool_size=1)
    try:
        return {k: (r.kind if (r := await lookup_token(store, v)) else None) for k, v in tokens.items()}
    finally:
        await store.close()


@pytest.fixture(scope="module")
def databases(fresh_database: Any) -> list[str]:
    """Two migrated databases on the session's real Postgres (the second replaces the first)."""
    return [fresh_database(), fresh_database()]


def test_the_token_bootstrap_mints_tokens_the_hub_accepts_into_its_secret_once(
    installed: None, kubectl: Kubectl, spoke: Any, databases: list[str], tmp_path: Path
) -> None:
    url, other = databases
    first = bootstrap(kubectl, spoke.kubeconfig, url, tmp_path)
    assert "admin-token: minted admin token" in first and "metrics-token: minted metrics token" in first
    tokens = stored_tokens(kubectl)
    assert set(tokens) == {"admin-token", "metrics-token"}
    assert asyncio.run(kinds_of(url, tokens)) == {"admin-token": "admin", "metrics-token": "metrics"}
    # A second run (the next upgrade's) keeps them: no new tokens pile up.
    again = bootstrap(kubectl, spoke.kubeconfig, url, tmp_path)
    assert "admin-token: kept" in again and "metrics-token: kept" in again, again
    assert stored_tokens(kubectl) == tokens
    # Against a database that does not know them (a new one), both are replaced.
    replaced = bootstrap(kubectl, spoke.kubeconfig, other, tmp_path)
    assert "the stored one no longer works" in replaced, replaced
    assert asyncio.run(kinds_of(other, stored_tokens(kubectl))) == {
        "admin-token": "admin",
        "metrics-token": "metrics",
    }


def test_a_token_the_bootstrap_cannot_store_is_revoked_not_left_valid(
    installed: None, kubectl: Kubectl, spoke: Any, fresh_database: Any, tmp_path: Path
) -> None:
    # A ServiceAccount that may read the Secrets but not patch them: the PATCH after minting
    # fails (403), as it would on an apiserver hiccup. The Job's retries must not leave valid
    # admin tokens behind that nobody holds.
    url = fresh_database()
    kubectl("-n", NS, "create", "serviceaccount", "bootstrap-read-only")
    kubectl(
        "-n", NS, "create", "role", "bootstrap-read-only", "--verb=get", "--resource=secrets",
        "--resource-name=fleetplane-hub-tokens", "--resource-name=fleetplane-hub-tokens-metrics",
    )  # fmt: skip
    kubectl(
        "-n", NS, "create", "rolebinding", "bootstrap-read-only", "--role=bootstrap-read-only",
        f"--serviceaccount={NS}:bootstrap-read-only",
    )  # fmt: skip
    before = stored_tokens(kubectl)
    for _ in range(2):  # the Job retries
        out = run_bootstrap(kubectl, spoke.kubeconfig, url, tmp_path, sa="bootstrap-read-only")
        assert out.returncode != 0, out.stdout
        assert "403" in out.stderr and "admin-token: minted admin token" in out.stdout, out.stdout + out.stderr
        assert "was revoked" in out.stdout, out.stdout
    assert asyncio.run(active_tokens(url)) == [], "every token minted and not stored was revoked"
    assert stored_tokens(kubectl) == before


async def active_tokens(database_url: str) -> list[str]:
    store = Store(sqlalchemy_url(database_url), pool_size=1)
    try:
        return [f"{t.kind} {t.id}" for t in await list_tokens(store)]
    finally:
        await store.close()


def test_a_hub_run_as_the_deployment_runs_it_serves_the_mounted_certificate_and_takes_the_tokens(
    installed: None, kubectl: Kubectl, databases: list[str], tmp_path: Path
) -> None:
    # The hub container's command, args and environment from the installed Deployment, run
    # here (no kubelet on kwok nodes): the TLS Secret's keys placed where its volumeMounts put
    # them, the database URL the Secret would give, port and host moved to a free loopback port.
    pod = kubectl.json("get", "deployment", "fleetplane-hub", "-n", NS)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    root = tmp_path / "pod"
    data_dir = root / env["FLEETPLANE_DATA_DIR"].lstrip("/")
    cert, key = ensure_serving_cert(tmp_path / "tls")  # stands for the cert-manager Secret
    tls_keys = {"tls.crt": cert, "tls.key": key}
    tls_volume = next(v["name"] for v in pod["volumes"] if "secret" in v)
    for mount in container["volumeMounts"]:
        target = root / mount["mountPath"].lstrip("/")
        if mount["name"] == tls_volume:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tls_keys[mount["subPath"]].read_bytes())
        else:
            target.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        a.replace("--port=8443", f"--port={port}").replace("--host=0.0.0.0", "--host=127.0.0.1")
        for a in container["args"]
    ]
    env.update(
        FLEETPLANE_DATA_DIR=str(data_dir),
        HOME=str(root / "tmp"),
        FLEETPLANE_DATABASE_URL=databases[1],
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    log = tmp_path / "hub.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            container["command"] + args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base = f"https://127.0.0.1:{port}"
        with httpx.Client(base_url=base, verify=ssl.create_default_context(cafile=str(cert)), timeout=10) as client:
            wait_until(
                "the hub answers /readyz",
                lambda: client.get("/readyz").status_code == 200,
                timeout=90,
                interval=0.5,
                retry_on=(httpx.HTTPError,),
            )
            tokens = stored_tokens(kubectl)
            admin = {"Authorization": f"Bearer {tokens['admin-token']}"}
            metrics = {"Authorization": f"Bearer {tokens['metrics-token']}"}
            assert client.get("/apis/fleetplane.io/v1alpha1/workloads", headers=admin).status_code == 200
            assert client.get("/metrics", headers=metrics).status_code == 200
            refused = client.get("/apis/fleetplane.io/v1alpha1/workloads", headers=metrics)
            assert refused.status_code == 403, refused.text
    finally:
        stop_process(proc)
        print(log.read_text(errors="replace")[-3000:])


def test_helm_upgrade_changes_the_replicas_and_settings_and_keeps_the_tokens(
    installed: None, helm: Helm, kubectl: Kubectl
) -> None:
    tokens = stored_tokens(kubectl)
    assert tokens, "the bootstrap test filled the Secrets"
    helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "--namespace",
        NS,
        *FEATURES,
        "--set",
        "replicas=3,settings.clusterTimeoutSeconds=90",
        "--timeout",
        "3m",
    )
    deployment = kubectl.json("get", "deployment", "fleetplane-hub", "-n", NS)
    assert deployment["spec"]["replicas"] == 3
    [hub] = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": "FLEETPLANE_CLUSTER_TIMEOUT_SECONDS", "value": "90"} in hub["env"]
    assert stored_tokens(kubectl) == tokens, "helm's merge left the Job's keys alone"
    migrate = kubectl.json("get", "job", "fleetplane-hub-migrate", "-n", NS)
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    [container] = migrate["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["fleetplane", "db", "upgrade"]


def test_helm_uninstall_removes_everything_but_the_database_and_the_tokens(
    installed: None, helm: Helm, kubectl: Kubectl
) -> None:
    helm("uninstall", RELEASE, "--namespace", NS, "--wait")
    for kind, name in RELEASED:
        assert not exists(kubectl, kind, name), f"{kind}/{name} after uninstall"
    for kind, name in KEPT:
        assert exists(kubectl, kind, name), f"{kind}/{name} is kept (helm.sh/resource-policy: keep)"


def test_with_an_external_postgres_the_migration_runs_before_the_install(
    crds: None, helm: Helm, kubectl: Kubectl, databases: list[str], tmp_path: Path
) -> None:
    # The Secrets an operator makes first: the database URL and the serving certificate.
    ns, release = "fleetplane-ext", "hub-ext"
    cert, key = ensure_serving_cert(tmp_path / "tls")
    kubectl("create", "namespace", ns)
    kubectl("-n", ns, "create", "secret", "generic", "fleetplane-db", f"--from-literal=uri={databases[0]}")
    kubectl("-n", ns, "create", "secret", "tls", "hub-tls", f"--cert={cert}", f"--key={key}")
    helm(
        "install", release, str(CHART), "--namespace", ns,
        "--set-string", "postgresql.external.secretName=fleetplane-db,tls.secretName=hub-tls",
        "--set-string", FEATURES[-1], "--timeout", "3m",
    )  # fmt: skip
    try:
        migrate = kubectl.json("get", "job", "fleetplane-hub-migrate", "-n", ns)
        assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert (migrate.get("status") or {}).get("succeeded") == 1, "helm waited for it (kwok completed it)"
        [container] = migrate["spec"]["template"]["spec"]["containers"]
        url = next(e for e in container["env"] if e["name"] == "FLEETPLANE_DATABASE_URL")
        assert url["valueFrom"]["secretKeyRef"] == {"name": "fleetplane-db", "key": "uri"}
        pod = kubectl.json("get", "deployment", "fleetplane-hub", "-n", ns)["spec"]["template"]["spec"]
        assert {v["name"]: v for v in pod["volumes"]}["tls"]["secret"]["secretName"] == "hub-tls"
        for kind in (
            "cluster.postgresql.cnpg.io",
            "certificate.cert-manager.io",
            "servicemonitor.monitoring.coreos.com",
        ):
            assert not kubectl("get", kind, "-n", ns, "-o", "name").strip(), f"no {kind} without its value"
    finally:
        helm("uninstall", release, "--namespace", ns, "--wait", check=False)
