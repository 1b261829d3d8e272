"""One real spoke control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok, plus the fake GPU nodes of its profiles.

Flags follow controller-runtime's envtest and kwokctl's binary runtime, with bearer-token
auth (tokens.csv) so kubeconfigs stay two lines of credentials. Each component gets its own
free loopback ports, so several spokes (and several labs) coexist on one machine.
"""

from __future__ import annotations

import base64
import secrets
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from fleetplane_lab import process
from fleetplane_lab.process import LOOPBACK, ProcRecord
from fleetplane_lab.profiles import render_nodes

STAGES_FILE = Path(__file__).parent / "kwok-stages.yaml"

# Startup budgets (seconds). Generous because 2 shared cores may be busy with other builds;
# a healthy spoke needs ~2 s for etcd, ~8 s for the apiserver and ~3 s for the rest.
ETCD_TIMEOUT = 60.0
APISERVER_TIMEOUT = 120.0
COMPONENT_TIMEOUT = 90.0
NODES_TIMEOUT = 90.0


class LabStartError(RuntimeError):
    """A lab component failed to start. Carries the component's name and its log tail.

    Usually not worth retrying as is: the tail says what to fix (a flag, a busy port, a
    missing binary). Transient overload can be retried with `lab down` + `lab up`.
    """

    def __init__(self, component: str, reason: str, log: str | None = None) -> None:
        self.component = component
        self.reason = reason
        self.log = log
        self.tail = process.log_tail(log) if log else ""
        msg = f"{component} failed to start: {reason}"
        if log:
            msg += f"\n--- last lines of {log} ---\n{self.tail}"
        super().__init__(msg)


@dataclass
class SpokeSpec:
    """What to start for one spoke.

    name: DNS label, also the node-name prefix. profiles: bundled profile names
    (fleetplane_lab/profiles) or YAML paths. region: moves every pool to this region (zones keep
    their letters). extra_args: extra flags per component ("kube-apiserver", "etcd", ...),
    mainly for tests that need a component to fail. etcd_fsync: run the spoke's own etcd with
    fsync, as production etcd does; off by default because lab data is throwaway and fsync
    makes every write wait on the disk (bench/bench_vs_kube.py turns it on so etcd is not
    flattered). A shared etcd (`Lab(shared_etcd=True)`) always runs without fsync.
    """

    name: str
    profiles: list[str] = field(default_factory=lambda: ["h100-reserved", "a100-spot", "l4-ondemand"])
    region: str | None = None
    extra_args: dict[str, list[str]] = field(default_factory=dict)
    etcd_fsync: bool = False


@dataclass
class SpokeInfo:
    """A running spoke: how to reach it and what runs for it (saved in the lab's state)."""

    name: str
    dir: str
    server: str = ""
    token: str = ""
    kubeconfig: str = ""
    ca_file: str = ""
    etcd_url: str = ""
    etcd_prefix: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    region: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    processes: list[ProcRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["processes"] = [p.to_dict() for p in self.processes]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpokeInfo:
        d = dict(d)
        d["processes"] = [ProcRecord.from_dict(p) for p in d.get("processes", [])]
        return cls(**d)

    def rss_bytes(self) -> int:
        return sum(p.rss_bytes() for p in self.processes)


def write_kubeconfig(path: Path, cluster: str, server: str, token: str, ca_pem: bytes | None) -> None:
    """A kubeconfig with one cluster/user/context; CA embedded so the file can be copied."""
    cluster_entry: dict[str, Any] = {"server": server}
    if ca_pem:
        cluster_entry["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    else:
        cluster_entry["insecure-skip-tls-verify"] = True
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": cluster_entry}],
        "users": [{"name": f"{cluster}-admin", "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": f"{cluster}-admin"}}],
        "current-context": cluster,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)


def _wait(component: str, rec: ProcRecord, check: Callable[[], bool], timeout: float) -> float:
    """Poll `check` until true; fail fast with the log tail if the process exits."""
    t0 = time.monotonic()
    while True:
        if not rec.alive():
            raise LabStartError(component, "process exited", rec.log)
        try:
            if check():
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        if time.monotonic() - t0 > timeout:
            raise LabStartError(component, f"not ready after {timeout:.0f}s", rec.log)
        time.sleep(0.1)


def start_etcd(
    name: str,
    data_dir: Path,
    bin_dir: Path,
    log_dir: Path,
    extra: list[str],
    record: Callable[[ProcRecord], None],
    *,
    fsync: bool = False,
) -> tuple[str, ProcRecord]:
    """Start etcd on free loopback ports and wait until healthy. `fsync=False` (the lab's
    default) passes `--unsafe-no-fsync`; `fsync=True` keeps etcd's durable default."""
    client, peer = process.free_ports(2)
    url = f"http://{LOOPBACK}:{client}"
    peer_url = f"http://{LOOPBACK}:{peer}"
    cmd = [
        str(bin_dir / "etcd"),
        "--name=lab",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={url}",
        f"--advertise-client-urls={url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=lab={peer_url}",
        # Throwaway test data: skipping fsync makes etcd (and so every API write) much faster,
        # as envtest does. Benchmarks against the hub keep it on (SpokeSpec.etcd_fsync).
        f"--unsafe-no-fsync={'false' if fsync else 'true'}",
        "--log-level=warn",
        *extra,
    ]
    rec = process.start(name, cmd, log_dir / "etcd.log", ports=[client, peer])
    record(rec)
    _wait(name, rec, lambda: httpx.get(f"{url}/health", timeout=1).json().get("health") == "true", ETCD_TIMEOUT)
    return url, rec


def _gen_sa_key(path: Path) -> None:
    # The service-account signing key. openssl is used because the venv has no `cryptography`.
    subprocess.run(["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True)


def start_spoke(
    spec: SpokeSpec,
    spoke_dir: Path,
    bin_dir: Path,
    record: Callable[[ProcRecord], None],
    etcd_url: str | None = None,
    kubeconfig_path: Path | None = None,
) -> SpokeInfo:
    """Start one spoke and create its GPU nodes; return once every node is Ready.

    `record` is called with each started process before waiting on it, so a caller can
    stop everything even when startup fails halfway. `etcd_url` shares an etcd (the spoke
    then uses its own key prefix); without it the spoke gets its own etcd.
    """
    t_start = time.monotonic()
    spoke_dir.mkdir(parents=True, exist_ok=True)
    logs = spoke_dir / "logs"
    info = SpokeInfo(name=spec.name, dir=str(spoke_dir), profiles=list(spec.profiles), region=spec.region)
    nodes = render_nodes(spec.name, spec.profiles, spec.region)  # fail on bad profiles before starting anything

    def rec_and_keep(r: ProcRecord) -> None:
        info.processes.append(r)
        record(r)

    # --- etcd ---
    if etcd_url is None:
        t0 = time.monotonic()
        etcd_url, _ = start_etcd(
            f"{spec.name}/etcd",
            spoke_dir / "etcd",
            bin_dir,
            logs,
            spec.extra_args.get("etcd", []),
            rec_and_keep,
            fsync=spec.etcd_fsync,
        )
        info.timings["etcd"] = time.monotonic() - t0
        info.etcd_prefix = "/registry"
    else:
        info.etcd_prefix = f"/fleetplane/{spec.name}/registry"
    info.etcd_url = etcd_url

    # --- credentials ---
    pki = spoke_dir / "pki"
    pki.mkdir(exist_ok=True)
    sa_key = pki / "sa.key"
    if not sa_key.exists():
        _gen_sa_key(sa_key)
    tokens = {c: secrets.token_hex(16) for c in ("admin", "kcm", "scheduler", "kwok")}
    # Scheduler runs as the user bootstrap RBAC grants scheduler rights to; the controller
    # manager and kwok get system:masters (kcm would otherwise need per-controller service
    # account credentials, i.e. the token controller, for no benefit here).
    (pki / "tokens.csv").write_text(
        f'{tokens["admin"]},admin,admin,"system:masters"\n'
        f'{tokens["kcm"]},fleetplane:kube-controller-manager,kcm,"system:masters"\n'
        f"{tokens['scheduler']},system:kube-scheduler,kube-scheduler,\n"
        f'{tokens["kwok"]},fleetplane:kwok,kwok,"system:masters"\n'
    )
    (pki / "tokens.csv").chmod(0o600)
    info.token = tokens["admin"]

    # --- kube-apiserver ---
    api_port, kcm_port, sched_port, kwok_port = process.free_ports(4)
    info.ports = {
        "kube-apiserver": api_port,
        "kube-controller-manager": kcm_port,
        "kube-scheduler": sched_port,
        "kwok": kwok_port,
    }
    server = f"https://{LOOPBACK}:{api_port}"
    info.server = server
    cert_dir = spoke_dir / "apiserver-certs"
    cmd = [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers={etcd_url}",
        f"--etcd-prefix={info.etcd_prefix}",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={api_port}",
        # No serving cert given: the apiserver writes a self-signed CA + cert for 127.0.0.1
        # here; the kubeconfigs embed it so TLS is verified, not skipped.
        f"--cert-dir={cert_dir}",
        "--service-cluster-ip-range=10.96.0.0/16",
        "--allow-privileged=true",
        f"--service-account-issuer={server}",
        f"--service-account-key-file={sa_key}",
        f"--service-account-signing-key-file={sa_key}",
        f"--token-auth-file={pki / 'tokens.csv'}",
        "--authorization-mode=RBAC",
        # Pods then need no service-account token volume (nothing runs them) and no race
        # with the controller creating "default" service accounts, as in envtest.
        "--disable-admission-plugins=ServiceAccount",
        # GPU pools are tainted nvidia.com/gpu:NoSchedule like managed clouds do; this plugin
        # adds the matching toleration to pods that request nvidia.com/gpu (as on GKE/AKS).
        "--enable-admission-plugins=ExtendedResourceToleration",
        "--profiling=false",
        *spec.extra_args.get("kube-apiserver", []),
    ]
    api = process.start(f"{spec.name}/kube-apiserver", cmd, logs / "kube-apiserver.log", ports=[api_port])
    rec_and_keep(api)
    hdr = {"Authorization": f"Bearer {info.token}"}
    info.timings["kube-apiserver"] = _wait(
        api.name,
        api,
        lambda: httpx.get(f"{server}/readyz", headers=hdr, verify=False, timeout=2).status_code == 200,
        APISERVER_TIMEOUT,
    )
    ca_pem = (cert_dir / "apiserver.crt").read_bytes()
    info.ca_file = str(cert_dir / "apiserver.crt")

    kcfg_dir = spoke_dir / "kubeconfigs"
    for comp in ("kcm", "scheduler", "kwok"):
        write_kubeconfig(kcfg_dir / f"{comp}.kubeconfig", spec.name, server, tokens[comp], ca_pem)
    kubeconfig = kubeconfig_path or (spoke_dir / "admin.kubeconfig")
    write_kubeconfig(kubeconfig, spec.name, server, info.token, ca_pem)
    info.kubeconfig = str(kubeconfig)

    # --- controller manager, scheduler, kwok (independent of each other: start together) ---
    kcm_cfg = kcfg_dir / "kcm.kubeconfig"
    kcm = process.start(
        f"{spec.name}/kube-controller-manager",
        [
            str(bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kcm_cfg}",
            f"--authentication-kubeconfig={kcm_cfg}",
            f"--authorization-kubeconfig={kcm_cfg}",
            "--leader-elect=false",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={kcm_port}",
            f"--cert-dir={spoke_dir / 'kcm-certs'}",
            f"--service-account-private-key-file={sa_key}",
            f"--root-ca-file={info.ca_file}",
            "--profiling=false",
            *spec.extra_args.get("kube-controller-manager", []),
        ],
        logs / "kube-controller-manager.log",
        ports=[kcm_port],
    )
    rec_and_keep(kcm)
    sch_cfg = kcfg_dir / "scheduler.kubeconfig"
    sched = process.start(
        f"{spec.name}/kube-scheduler",
        [
            str(bin_dir / "kube-scheduler"),
            f"--kubeconfig={sch_cfg}",
            f"--authentication-kubeconfig={sch_cfg}",
            f"--authorization-kubeconfig={sch_cfg}",
            "--leader-elect=false",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={sched_port}",
            f"--cert-dir={spoke_dir / 'scheduler-certs'}",
            "--profiling=false",
            *spec.extra_args.get("kube-scheduler", []),
        ],
        logs / "kube-scheduler.log",
        ports=[sched_port],
    )
    rec_and_keep(sched)
    kwok = process.start(
        f"{spec.name}/kwok",
        [
            str(bin_dir / "kwok"),
            f"--kubeconfig={kcfg_dir / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.0.0.1",
            f"--server-address={LOOPBACK}:{kwok_port}",
            f"--config={STAGES_FILE}",
            *spec.extra_args.get("kwok", []),
        ],
        logs / "kwok.log",
        ports=[kwok_port],
    )
    rec_and_keep(kwok)

    def healthy(url: str) -> Callable[[], bool]:
        return lambda: httpx.get(url, verify=False, timeout=2).status_code == 200

    info.timings["kube-controller-manager"] = _wait(
        kcm.name, kcm, healthy(f"https://{LOOPBACK}:{kcm_port}/healthz"), COMPONENT_TIMEOUT
    )
    info.timings["kube-scheduler"] = _wait(
        sched.name, sched, healthy(f"https://{LOOPBACK}:{sched_port}/healthz"), COMPONENT_TIMEOUT
    )
    info.timings["kwok"] = _wait(kwok.name, kwok, healthy(f"http://{LOOPBACK}:{kwok_port}/healthz"), COMPONENT_TIMEOUT)

    # --- fake GPU nodes ---
    t0 = time.monotonic()
    with httpx.Client(
        base_url=server, headers=hdr, verify=ssl.create_default_context(cafile=info.ca_file), timeout=10
    ) as c:
        for node in nodes:
            create_node(c, node)
        info.nodes = [n["metadata"]["name"] for n in nodes]
        _wait(f"{spec.name}/kwok", kwok, lambda: _all_ready(c, set(info.nodes)), NODES_TIMEOUT)
    info.timings["nodes"] = time.monotonic() - t0
    info.timings["total"] = time.monotonic() - t_start
    return info


def create_node(c: httpx.Client, node: dict[str, Any]) -> None:
    """Create a Node with its GPU capacity; idempotent.

    The apiserver keeps status on Node create (kubelets register this way), but we check
    and patch the status subresource if it was dropped, so capacity is never missing.
    """
    r = c.post("/api/v1/nodes", json=node)
    if r.status_code not in (201, 409):
        raise LabStartError("nodes", f"creating node {node['metadata']['name']}: HTTP {r.status_code} {r.text[:300]}")
    name = node["metadata"]["name"]
    got = c.get(f"/api/v1/nodes/{name}").json()
    if got.get("status", {}).get("allocatable", {}).get("nvidia.com/gpu") is None:
        r = c.patch(
            f"/api/v1/nodes/{name}/status",
            json={"status": node["status"]},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        r.raise_for_status()


# Taints the node lifecycle controller puts on a node whose Ready condition is not True.
# It may add one before kwok first reports Ready and removes it only on a later pass
# (--node-monitor-period, 5 s), so a node can be Ready and still refuse every pod.
LIFECYCLE_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def _all_ready(c: httpx.Client, names: set[str]) -> bool:
    """Every named node is Ready and free of the lifecycle taints (schedulable as profiled)."""
    items = c.get("/api/v1/nodes").json().get("items", [])
    ready = {
        n["metadata"]["name"]
        for n in items
        if any(
            cond.get("type") == "Ready" and cond.get("status") == "True"
            for cond in n.get("status", {}).get("conditions", [])
        )
        and not any(t.get("key") in LIFECYCLE_TAINTS for t in n.get("spec", {}).get("taints") or [])
    }
    return names <= ready
