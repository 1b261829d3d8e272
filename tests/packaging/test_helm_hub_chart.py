"""The hub's Helm chart with the real `helm` (built by `make helm`), no cluster: it lints clean,
renders the hub's objects for an external Postgres and for CloudNativePG + cert-manager +
ServiceMonitor, every hub setting becomes the FLEETPLANE_* variable the hub's own Settings
reads, the token bootstrap Job may touch one Secret only, and helm refuses bad values with a
message naming the value. tests/lab/test_helm_hub_install.py installs it into a real apiserver.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.settings import Settings
from tests.packaging.test_helm_agent_chart import helm, sets

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "fleetplane-hub"
NS = "fleetplane"
EXTERNAL = {"postgresql.external.secretName": "fleetplane-db", "tls.secretName": "hub-tls"}
FEATURES = [
    "--set",
    "postgresql.cloudnativepg.enabled=true,tls.certManager.enabled=true,serviceMonitor.enabled=true,replicas=3",
    "--set-string",
    "tls.certManager.issuerRef.name=fleet-ca,tls.certManager.dnsNames[0]=hub.example.com",
]
CHART_MANAGED = {"database_url", "data_dir", "host", "port", "http_port", "admin_kubeconfig"}
Objects = dict[tuple[str, str], dict[str, Any]]


def render(tmp_path: Path, values: dict[str, str] | None = None, *extra: str) -> Objects:
    out = helm(
        "template",
        "hub",
        CHART,
        "--namespace",
        NS,
        *sets(EXTERNAL if values is None else values),
        *extra,
        home=tmp_path,
    )
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert len(objects) == len(docs), "no two objects share a kind and name"
    return objects


def refused(tmp_path: Path, values: dict[str, str], *extra: str) -> str:
    out = helm("template", "hub", CHART, "--namespace", NS, *sets(values), *extra, home=tmp_path, check=False)
    assert out.returncode != 0, f"helm accepted bad values: {values} {extra}"
    return out.stderr


def container(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    [c] = objects[kind, name]["spec"]["template"]["spec"]["containers"]
    return dict(c)


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def camel(field: str) -> str:
    first, *rest = field.split("_")
    return first + "".join(w.title() for w in rest)


def test_the_chart_lints_clean_in_strict_mode_as_shipped_and_with_both_databases(tmp_path: Path) -> None:
    for args in ([], sets(EXTERNAL), FEATURES):
        out = helm("lint", "--strict", CHART, "--namespace", NS, *args, home=tmp_path)
        assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout, out.stdout
        assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


def test_external_postgres_renders_the_hub_its_service_and_both_jobs(tmp_path: Path) -> None:
    objects = render(tmp_path)
    assert set(objects) == {
        ("ServiceAccount", "fleetplane-hub"),
        ("Deployment", "fleetplane-hub"),
        ("PodDisruptionBudget", "fleetplane-hub"),
        ("Service", "fleetplane-hub"),
        ("Job", "fleetplane-hub-migrate"),
        ("Secret", "fleetplane-hub-tokens"),
        ("ServiceAccount", "fleetplane-hub-bootstrap"),
        ("Role", "fleetplane-hub-bootstrap"),
        ("RoleBinding", "fleetplane-hub-bootstrap"),
        ("ConfigMap", "fleetplane-hub-bootstrap"),
        ("Job", "fleetplane-hub-token-bootstrap"),
    }
    assert all(o["metadata"]["namespace"] == NS for o in objects.values())
    deployment = objects["Deployment", "fleetplane-hub"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert (
        deployment["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert pod["automountServiceAccountToken"] is False, "the hub never calls this cluster's API"
    assert pod["securityContext"]["runAsNonRoot"] is True
    hub = container(objects, "Deployment", "fleetplane-hub")
    assert hub["command"] + hub["args"] == ["fleetplane", "up", "--host=0.0.0.0", "--port=8443"]
    assert hub["securityContext"]["readOnlyRootFilesystem"] is True
    assert hub["securityContext"]["allowPrivilegeEscalation"] is False
    env = env_of(hub)
    assert env["FLEETPLANE_DATABASE_URL"] == {"secretKeyRef": {"name": "fleetplane-db", "key": "uri"}}
    assert env["FLEETPLANE_WORKERS"] == "1"
    assert hub["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "https", "scheme": "HTTPS"}
    assert hub["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    # The hub serves the certificate it finds in its data dir (hub.web.tls.ensure_serving_cert).
    mounts = {m["mountPath"]: m for m in hub["volumeMounts"]}
    data_dir = env["FLEETPLANE_DATA_DIR"]
    assert mounts[f"{data_dir}/hub-cert.pem"]["subPath"] == "tls.crt"
    assert mounts[f"{data_dir}/hub-key.pem"]["subPath"] == "tls.key"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "hub-tls"
    assert "emptyDir" in volumes[mounts[data_dir]["name"]], "the data dir is writable scratch, not the image"

    service = objects["Service", "fleetplane-hub"]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [{"name": "https", "port": 8443, "targetPort": "https", "protocol": "TCP"}]

    migrate = objects["Job", "fleetplane-hub-migrate"]
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert container(objects, "Job", "fleetplane-hub-migrate")["command"] == ["fleetplane", "db", "upgrade"]
    assert (
        env_of(container(objects, "Job", "fleetplane-hub-migrate"))["FLEETPLANE_DATABASE_URL"]
        == env["FLEETPLANE_DATABASE_URL"]
    )
    bootstrap = objects["Job", "fleetplane-hub-token-bootstrap"]
    assert bootstrap["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    assert bootstrap["spec"]["template"]["spec"]["serviceAccountName"] == "fleetplane-hub-bootstrap"
    assert env_of(container(objects, "Job", "fleetplane-hub-token-bootstrap"))["TOKENS_SECRET"] == (
        f"{NS}/fleetplane-hub-tokens"
    )
    script = objects["ConfigMap", "fleetplane-hub-bootstrap"]["data"]["token-bootstrap.py"]
    assert script == (CHART / "files" / "token-bootstrap.py").read_text()
    tokens = objects["Secret", "fleetplane-hub-tokens"]
    assert "data" not in tokens and "stringData" not in tokens, "the Job fills it; helm never overwrites it"
    assert tokens["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_the_bootstrap_service_account_may_read_and_patch_the_tokens_secret_only(tmp_path: Path) -> None:
    objects = render(tmp_path, EXTERNAL, "--set-string", "tokenBootstrap.secretName=hub-admin")
    assert objects["Role", "fleetplane-hub-bootstrap"]["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["hub-admin"], "verbs": ["get", "patch"]}
    ]
    binding = objects["RoleBinding", "fleetplane-hub-bootstrap"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "fleetplane-hub-bootstrap", "namespace": NS}]
    assert binding["roleRef"]["kind"] == "Role", "never a ClusterRole"
    assert ("Secret", "hub-admin") in objects


def test_cloudnativepg_cert_manager_and_servicemonitor_render_what_their_operators_expect(tmp_path: Path) -> None:
    objects = render(tmp_path, {}, *FEATURES)
    cluster = objects["Cluster", "fleetplane-hub-db"]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["instances"] == 2 and cluster["spec"]["storage"] == {"size": "10Gi"}
    assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "fleetplane", "owner": "fleetplane"}
    assert cluster["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", "uninstall keeps the data"
    hub = container(objects, "Deployment", "fleetplane-hub")
    # CloudNativePG writes the application user's URL to <cluster>-app, key uri.
    assert env_of(hub)["FLEETPLANE_DATABASE_URL"] == {"secretKeyRef": {"name": "fleetplane-hub-db-app", "key": "uri"}}
    assert objects["Deployment", "fleetplane-hub"]["spec"]["replicas"] == 3
    # The URL Secret exists only once the release's Cluster does: no pre-install migration.
    assert objects["Job", "fleetplane-hub-migrate"]["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"

    cert = objects["Certificate", "fleetplane-hub"]
    assert cert["apiVersion"] == "cert-manager.io/v1"
    assert cert["spec"]["secretName"] == "fleetplane-hub-tls"
    assert cert["spec"]["issuerRef"] == {"name": "fleet-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert {f"fleetplane-hub.{NS}.svc", "hub.example.com"} <= set(cert["spec"]["dnsNames"])
    pod = objects["Deployment", "fleetplane-hub"]["spec"]["template"]["spec"]
    assert {v["name"]: v for v in pod["volumes"]}["tls"]["secret"]["secretName"] == "fleetplane-hub-tls"

    monitor = objects["ServiceMonitor", "fleetplane-hub"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items()
        <= objects["Service", "fleetplane-hub"]["metadata"]["labels"].items()
    )
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "https" and endpoint["path"] == "/metrics" and endpoint["scheme"] == "https"
    assert endpoint["bearerTokenSecret"] == {"name": "fleetplane-hub-tokens", "key": "metrics-token"}
    assert endpoint["tlsConfig"]["ca"] == {"secret": {"name": "fleetplane-hub-tls", "key": "ca.crt"}}
    assert endpoint["tlsConfig"]["serverName"] in cert["spec"]["dnsNames"]
    assert env_of(container(objects, "Job", "fleetplane-hub-token-bootstrap"))["METRICS_TOKEN"] == "true"


def test_every_hub_setting_is_a_value_that_becomes_the_variable_the_hub_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["settings"]
    fields = {k for k in Settings.model_fields if k not in CHART_MANAGED}
    assert set(schema["properties"]) == {camel(f) for f in fields}
    assert schema["additionalProperties"] is False
    # A value for each setting, different from its default, rendered and parsed by Settings.
    given: dict[str, Any] = {}
    for f in sorted(fields):
        default = Settings.model_fields[f].default
        if isinstance(default, bool):
            given[f] = not default
        elif f == "workers":
            given[f] = 3
        elif f == "db_pool_size":
            given[f] = 7
        elif isinstance(default, int):
            given[f] = default * 2 + 1  # large ones too: 3145728 must not print as 3.1e+06
        elif isinstance(default, float):
            given[f] = default * 2 + 0.5
        else:
            given[f] = "spread"
    values = tmp_path / "settings.yaml"
    values.write_text(yaml.safe_dump({"settings": {camel(f): v for f, v in given.items()}}))
    env = env_of(container(render(tmp_path, EXTERNAL, "-f", str(values)), "Deployment", "fleetplane-hub"))
    for name in [n for n in env if n.startswith("FLEETPLANE_")]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if isinstance(value, str) and name.startswith("FLEETPLANE_"):
            monkeypatch.setenv(name, value)
    parsed = Settings()
    for f, v in given.items():
        assert getattr(parsed, f) == v, (
            f"settings.{camel(f)} -> FLEETPLANE_{f.upper()}={env.get('FLEETPLANE_' + f.upper())}"
        )


def test_one_replica_has_no_disruption_budget(tmp_path: Path) -> None:
    objects = render(tmp_path, EXTERNAL, "--set", "replicas=1")
    assert ("PodDisruptionBudget", "fleetplane-hub") not in objects
    assert objects["Deployment", "fleetplane-hub"]["spec"]["replicas"] == 1


def test_without_the_bootstrap_no_token_objects_are_rendered(tmp_path: Path) -> None:
    objects = render(tmp_path, EXTERNAL, "--set", "tokenBootstrap.enabled=false")
    assert not {k for k in objects if "bootstrap" in k[1] or k[1] == "fleetplane-hub-tokens"}


def test_every_rbac_rule_of_the_chart_is_commented_with_why() -> None:
    lines = (CHART / "templates" / "token-bootstrap.yaml").read_text().splitlines()
    rules = [i for i, line in enumerate(lines) if line.strip().startswith("- apiGroups:")]
    assert rules
    for i in rules:
        assert lines[i - 1].strip().startswith("#"), f"rule at line {i + 1} has no comment"


@pytest.mark.parametrize(
    "values,extra,words",
    [
        ({}, (), ["postgresql: no database", "postgresql.external.secretName", "cloudnativepg.enabled=true"]),
        (
            EXTERNAL,
            ("--set", "postgresql.cloudnativepg.enabled=true"),
            ["set either postgresql.external.secretName or postgresql.cloudnativepg.enabled=true, not both"],
        ),
        ({"postgresql.external.secretName": "db"}, (), ["tls: no serving certificate", "tls.secretName"]),
        (
            {"postgresql.external.secretName": "db"},
            ("--set", "tls.certManager.enabled=true"),
            ["tls.certManager.issuerRef.name is required"],
        ),
        ({**EXTERNAL, "tls.certManager.enabled": "true"}, (), ["/tls/certManager/enabled", "want boolean"]),
        (EXTERNAL, ("--set", "replicas=0"), ["/replicas", "minimum: got 0, want 1"]),
        (EXTERNAL, ("--set", "image.pullPolicy=Sometimes"), ["/image/pullPolicy", "'Always', 'IfNotPresent', 'Never'"]),
        (EXTERNAL, ("--set", "settings.clusterTimeoutSecond=30"), ["/settings", "'clusterTimeoutSecond' not allowed"]),
        (EXTERNAL, ("--set", "settings.workers=0"), ["/settings/workers"]),
        (EXTERNAL, ("--set", "settings.authCacheSeconds=900"), ["/settings/authCacheSeconds", "maximum"]),
        (EXTERNAL, ("--set", "settings.databaseUrl=postgresql://x"), ["'databaseUrl' not allowed"]),
        (EXTERNAL, ("--set", "service.type=Ingress"), ["/service/type", "'ClusterIP', 'NodePort', 'LoadBalancer'"]),
        (
            {**EXTERNAL, "postgresql.external.secretName": "Fleet_DB"},
            (),
            ["/postgresql/external/secretName", "does not match pattern"],
        ),
        (
            EXTERNAL,
            ("--set", "postgresql.cloudnativepg.storage.size=lots"),
            ["/postgresql/cloudnativepg/storage/size", "does not match pattern"],
        ),
        (
            EXTERNAL,
            ("--set", "serviceMonitor.enabled=true,tokenBootstrap.metricsToken=false"),
            ["serviceMonitor.enabled needs tokenBootstrap.enabled and tokenBootstrap.metricsToken"],
        ),
        (EXTERNAL, ("--set", "serviceMonitor.interval=often"), ["/serviceMonitor/interval", "does not match"]),
        (EXTERNAL, ("--set", "postgres.url=x"), ["additional properties 'postgres' not allowed"]),
    ],
)
def test_bad_values_are_refused_by_helm_naming_the_value(
    tmp_path: Path, values: dict[str, str], extra: tuple[str, ...], words: list[str]
) -> None:
    message = refused(tmp_path, values, *extra)
    for w in words:
        assert w in message, message


def test_the_token_bootstrap_script_is_valid_python_using_only_the_hub_and_the_standard_library() -> None:
    source = (CHART / "files" / "token-bootstrap.py").read_text()
    compile(source, "token-bootstrap.py", "exec")
    imports = set(re.findall(r"^(?:from|import) ([\w.]+)", source, re.M))
    assert {
        m
        for m in imports
        if m.split(".")[0] not in {"__future__", "asyncio", "base64", "json", "os", "ssl", "sys", "urllib", "hub"}
    } == set()
