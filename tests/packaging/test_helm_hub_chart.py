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
from tests.packaging import helmrun
from tests.packaging.helmrun import HUB_CHART as CHART
from tests.packaging.helmrun import Objects, lints_clean, sets

NS = "fleetplane"
EXTERNAL = {"postgresql.external.secretName": "fleetplane-db", "tls.secretName": "hub-tls"}
FEATURES = [
    "--set",
    "postgresql.cloudnativepg.enabled=true,tls.certManager.enabled=true,serviceMonitor.enabled=true,replicas=3",
    "--set-string",
    "tls.certManager.issuerRef.name=fleet-ca,tls.certManager.dnsNames[0]=hub.example.com",
]
CHART_MANAGED = {"database_url", "data_dir", "host", "port", "http_port", "admin_kubeconfig"}


def render(tmp_path: Path, values: dict[str, str] | None = None, *extra: str) -> Objects:
    return helmrun.render(CHART, "hub", NS, EXTERNAL if values is None else values, *extra, home=tmp_path)


def refused(tmp_path: Path, values: dict[str, str], *extra: str) -> str:
    return helmrun.refused(CHART, "hub", NS, values, *extra, home=tmp_path)


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
        lints_clean(CHART, "--namespace", NS, *args, home=tmp_path)


def test_external_postgres_renders_the_hub_its_service_and_both_jobs(tmp_path: Path) -> None:
    objects = render(tmp_path)
    assert set(objects) == {
        ("ServiceAccount", "fleetplane-hub"),
        ("Deployment", "fleetplane-hub"),
        ("PodDisruptionBudget", "fleetplane-hub"),
        ("Service", "fleetplane-hub"),
        ("Job", "fleetplane-hub-migrate"),
        ("Secret", "fleetplane-hub-tokens"),
        ("Secret", "fleetplane-hub-tokens-metrics"),
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
    bootstrap_env = env_of(container(objects, "Job", "fleetplane-hub-token-bootstrap"))
    assert bootstrap_env["TOKENS_SECRET"] == f"{NS}/fleetplane-hub-tokens"
    assert bootstrap_env["METRICS_SECRET"] == f"{NS}/fleetplane-hub-tokens-metrics"
    script = objects["ConfigMap", "fleetplane-hub-bootstrap"]["data"]["token-bootstrap.py"]
    assert script == (CHART / "files" / "token-bootstrap.py").read_text()
    for name in ("fleetplane-hub-tokens", "fleetplane-hub-tokens-metrics"):
        tokens = objects["Secret", name]
        assert "data" not in tokens and "stringData" not in tokens, "the Job fills it; helm never overwrites it"
        assert tokens["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_the_bootstrap_service_account_may_read_and_patch_the_tokens_secrets_only(tmp_path: Path) -> None:
    objects = render(tmp_path, EXTERNAL, "--set-string", "tokenBootstrap.secretName=hub-admin")
    assert objects["Role", "fleetplane-hub-bootstrap"]["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["hub-admin", "hub-admin-metrics"],
            "verbs": ["get", "patch"],
        }
    ]
    binding = objects["RoleBinding", "fleetplane-hub-bootstrap"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "fleetplane-hub-bootstrap", "namespace": NS}]
    assert binding["roleRef"]["kind"] == "Role", "never a ClusterRole"
    assert ("Secret", "hub-admin") in objects and ("Secret", "hub-admin-metrics") in objects
    # Without a metrics token, the admin token's Secret alone.
    objects = render(tmp_path, EXTERNAL, "--set", "tokenBootstrap.metricsToken=false")
    assert objects["Role", "fleetplane-hub-bootstrap"]["rules"][0]["resourceNames"] == ["fleetplane-hub-tokens"]
    assert ("Secret", "fleetplane-hub-tokens-metrics") not in objects
    assert env_of(container(objects, "Job", "fleetplane-hub-token-bootstrap"))["METRICS_SECRET"] == ""


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
    # Its own Secret: whoever may read it to scrape cannot read the admin token.
    assert endpoint["bearerTokenSecret"] == {"name": "fleetplane-hub-tokens-metrics", "key": "metrics-token"}
    bootstrap_env = env_of(container(objects, "Job", "fleetplane-hub-token-bootstrap"))
    assert bootstrap_env["METRICS_SECRET"] == f"{NS}/fleetplane-hub-tokens-metrics"
    assert bootstrap_env["TOKENS_SECRET"] != bootstrap_env["METRICS_SECRET"]
    assert endpoint["tlsConfig"]["ca"] == {"secret": {"name": "fleetplane-hub-tls", "key": "ca.crt"}}
    assert endpoint["tlsConfig"]["serverName"] in cert["spec"]["dnsNames"]


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
        elif f == "event_loop":
            given[f] = "asyncio"
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


def test_one_replica_has_no_disruption_budget_and_zero_stops_the_hub(tmp_path: Path) -> None:
    for replicas in (1, 0):
        objects = render(tmp_path, EXTERNAL, "--set", f"replicas={replicas}")
        assert ("PodDisruptionBudget", "fleetplane-hub") not in objects
        assert objects["Deployment", "fleetplane-hub"]["spec"]["replicas"] == replicas


def test_pull_secrets_pod_annotations_and_scheduling_reach_the_hub_pods_and_the_jobs(tmp_path: Path) -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}]
            }
        }
    }
    values = tmp_path / "scheduling.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "imagePullSecrets": [{"name": "ghcr-pull"}],
                "podAnnotations": {"backup.example.com/skip": "true"},
                "nodeSelector": {"pool": "system"},
                "affinity": affinity,
            }
        )
    )
    objects = render(tmp_path, EXTERNAL, "-f", str(values))
    for kind, name in [
        ("Deployment", "fleetplane-hub"),
        ("Job", "fleetplane-hub-migrate"),
        ("Job", "fleetplane-hub-token-bootstrap"),
    ]:
        pod = objects[kind, name]["spec"]["template"]["spec"]
        assert pod["imagePullSecrets"] == [{"name": "ghcr-pull"}], name
        assert pod["nodeSelector"] == {"pool": "system"}, name
        assert pod["affinity"] == affinity, name
    template = objects["Deployment", "fleetplane-hub"]["spec"]["template"]
    assert template["metadata"]["annotations"] == {"backup.example.com/skip": "true"}
    # Without an affinity the hub pods prefer distinct nodes; the Jobs have none.
    objects = render(tmp_path)
    assert "podAntiAffinity" in objects["Deployment", "fleetplane-hub"]["spec"]["template"]["spec"]["affinity"]
    assert "affinity" not in objects["Job", "fleetplane-hub-migrate"]["spec"]["template"]["spec"]


def test_string_values_that_look_like_numbers_or_booleans_render_as_strings(tmp_path: Path) -> None:
    # Schema-valid names YAML would read as 123, true, 16 or a bool: the apiserver wants strings.
    weird = {
        "postgresql.external.secretName": "123",
        "postgresql.external.secretKey": "true",
        "tls.secretName": "0x10",
        "tokenBootstrap.secretName": "0x10",
        "image.tag": "1.0",
    }
    objects = render(tmp_path, weird, "--set", "serviceMonitor.enabled=true", "--set-string", "serviceMonitor.caKey=1")
    hub = container(objects, "Deployment", "fleetplane-hub")
    assert env_of(hub)["FLEETPLANE_DATABASE_URL"] == {"secretKeyRef": {"name": "123", "key": "true"}}
    assert hub["image"] == "ghcr.io/fleetplane/hub:1.0"
    pod = objects["Deployment", "fleetplane-hub"]["spec"]["template"]["spec"]
    assert {v["name"]: v for v in pod["volumes"]}["tls"]["secret"]["secretName"] == "0x10"
    assert ("Secret", "0x10") in objects
    assert objects["Role", "fleetplane-hub-bootstrap"]["rules"][0]["resourceNames"] == ["0x10", "0x10-metrics"]
    [endpoint] = objects["ServiceMonitor", "fleetplane-hub"]["spec"]["endpoints"]
    assert endpoint["tlsConfig"]["ca"] == {"secret": {"name": "0x10", "key": "1"}}
    # The release namespace and name, the CloudNativePG Cluster and cert-manager's issuer too.
    objects = helmrun.render(
        CHART, "123", "0x10", {"postgresql.cloudnativepg.name": "123", "tls.certManager.issuerRef.name": "on",
        "postgresql.cloudnativepg.storage.storageClass": "true", "postgresql.cloudnativepg.imageName": "1",
        "postgresql.cloudnativepg.storage.size": "10", "tls.certManager.dnsNames[0]": "123"},
        *FEATURES[:2], home=tmp_path,
    )  # fmt: skip
    assert {o["metadata"]["namespace"] for o in objects.values()} == {"0x10"}
    assert {o["metadata"]["labels"]["app.kubernetes.io/instance"] for o in objects.values()} == {"123"}
    cluster = objects["Cluster", "123"]["spec"]
    assert cluster["storage"] == {"size": "10", "storageClass": "true"} and cluster["imageName"] == "1"
    cert = objects["Certificate", "fleetplane-hub"]["spec"]
    assert cert["issuerRef"]["name"] == "on" and "123" in cert["dnsNames"]
    monitor = objects["ServiceMonitor", "fleetplane-hub"]["spec"]
    assert monitor["namespaceSelector"] == {"matchNames": ["0x10"]}
    binding = objects["RoleBinding", "fleetplane-hub-bootstrap"]
    assert binding["subjects"][0]["namespace"] == "0x10"


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
        (EXTERNAL, ("--set", "replicas=-1"), ["/replicas", "minimum: got -1, want 0"]),
        (EXTERNAL, ("--set", "settings.placementProfile=fastest"), ["/settings/placementProfile", "'default'"]),
        (
            EXTERNAL,
            ("--set", "tls.certManager.enabled=true", "--set-string", "tls.certManager.issuerRef.name=Fleet_CA"),
            ["/tls/certManager/issuerRef/name", "does not match pattern"],
        ),
        (EXTERNAL, ("--set", "imagePullSecrets[0].secret=x"), ["/imagePullSecrets/0"]),
        (EXTERNAL, ("--set", "podAnnotations.a=1"), ["/podAnnotations/a", "want string"]),
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


def test_the_placement_profiles_of_the_schema_are_the_ones_the_engine_has() -> None:
    from placement.profiles import PROFILES

    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["settings"]["properties"]
    assert schema["placementProfile"]["enum"] == list(PROFILES)
