"""The multi-cluster lab: a hub plus N real spoke control planes with fake GPU nodes.

`Lab` is the one entry point for the CLI (`fleetplane lab up|down|status`) and for pytest
fixtures. All state lives in the run dir (default .fleetplane/lab):

    lab.json                    what runs: every process (PID, start time, ports, log)
    kubeconfigs/<spoke>.kubeconfig, kubeconfigs/hub.kubeconfig
    spokes/<spoke>/             etcd data, certs, tokens, logs/<component>.log
    hub/                        the hub's data dir (embedded Postgres), hub.log

so `lab down` from another process stops exactly what `lab up` started.

Backends: "local" (default; real control planes from Go-built binaries, no Docker) and
"kind" (Docker hosts; deploy/kind/lab-kind.sh). The agent's *simulated* backend is a
separate thing and not started here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from fleetplane_lab import kind, process
from fleetplane_lab.binaries import require_binaries
from fleetplane_lab.process import LOOPBACK, ProcRecord
from fleetplane_lab.spoke import LabStartError, SpokeInfo, SpokeSpec, start_etcd, start_spoke
from fleetplane_testing import hub_command, wait_ready

DEFAULT_DIR = Path(".fleetplane/lab")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
STATE_FILE = "lab.json"
HUB_TIMEOUT = 120.0

# Default spokes differ in region and GPU mix so placement has real choices to make:
# spoke-1 has reserved H100 + on-demand L4, spoke-2 spot A100 + on-demand L4, spoke-3
# reserved H100 + spot A100, then the pattern repeats in further regions.
_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-2"]
_MIXES = [["h100-reserved", "l4-ondemand"], ["a100-spot", "l4-ondemand"], ["h100-reserved", "a100-spot"]]


def default_spokes(n: int, profiles: list[str] | None = None) -> list[SpokeSpec]:
    """spoke-1..spoke-n; `profiles` gives every spoke the same profiles instead of the mix."""
    return [
        SpokeSpec(
            name=f"spoke-{i + 1}",
            profiles=list(profiles or _MIXES[i % len(_MIXES)]),
            region=_REGIONS[i % len(_REGIONS)],
        )
        for i in range(n)
    ]


@dataclass
class HubInfo:
    """The lab's hub: `url` is HTTPS (what kubeconfigs use), `http_url` plain loopback HTTP."""

    url: str
    kubeconfig: str
    data_dir: str
    process: ProcRecord | None = None
    http_url: str = ""

    @property
    def token(self) -> str:
        """The hub's admin bearer token (written by `fleetplane up`)."""
        return (Path(self.data_dir) / "admin.token").read_text().strip() if self.data_dir else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "http_url": self.http_url,
            "kubeconfig": self.kubeconfig,
            "data_dir": self.data_dir,
            "process": self.process.to_dict() if self.process else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HubInfo:
        p = d.get("process")
        return cls(
            url=d["url"],
            kubeconfig=d["kubeconfig"],
            data_dir=d["data_dir"],
            http_url=d.get("http_url", ""),
            process=ProcRecord.from_dict(p) if p else None,
        )


@dataclass
class ComponentStatus:
    name: str
    pid: int
    alive: bool
    rss_bytes: int
    ports: list[int]
    log: str


@dataclass
class LabStatus:
    backend: str
    running: bool
    components: list[ComponentStatus] = field(default_factory=list)
    spokes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> server, kubeconfig, rss
    hub: dict[str, Any] | None = None


@dataclass
class DownReport:
    stopped: list[str]
    killed: list[str]  # needed SIGKILL after the grace period
    busy_ports: list[int]  # still listening afterwards (should be empty)
    leftover_pids: list[int]  # processes we started that still exist (should be empty)


class LabError(RuntimeError):
    """Wrong use of the lab (already running, nothing to stop, hub unavailable). Not retryable."""


class Lab:
    """A hub and N spokes. Use as a context manager, or call up()/down().

    >>> with Lab("/tmp/lab", spokes=default_spokes(2), with_hub=False) as lab:
    ...     lab.spokes["spoke-1"].kubeconfig
    """

    def __init__(
        self,
        root_dir: str | Path = DEFAULT_DIR,
        spokes: list[SpokeSpec] | None = None,
        with_hub: bool = True,
        shared_etcd: bool = False,
        bin_dir: Path | None = None,
        hub_port: int | None = None,
        backend: str = "local",
        progress: Callable[[str], None] | None = None,
        hub_env: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(root_dir).absolute()
        self.specs = spokes if spokes is not None else default_spokes(2)
        self.with_hub = with_hub
        self.shared_etcd = shared_etcd
        self.bin_dir = bin_dir
        self.hub_port = hub_port
        self.backend = backend
        self.progress = progress or (lambda msg: None)
        # Extra environment for the hub process only (e.g. FLEETPLANE_CLUSTER_TIMEOUT_SECONDS
        # for fast failover tests); spokes never see it.
        self.hub_env = dict(hub_env or {})
        self.spokes: dict[str, SpokeInfo] = {}
        self.hub: HubInfo | None = None
        self.shared: list[ProcRecord] = []  # processes not owned by one spoke (shared etcd)
        self.timings: dict[str, float] = {}
        self._lock = threading.Lock()
        self._records: list[ProcRecord] = []  # every process, in start order

    # ----- lifecycle -----

    def up(self) -> Lab:
        """Start everything; on any failure stop what started and raise LabStartError."""
        if self.backend not in ("local", "kind"):
            raise LabError(f"unknown lab backend {self.backend!r}; use 'local' or 'kind'")
        existing = self._load_state()
        if existing and any(r.alive() for r in _records_of(existing)):
            raise LabError(
                f"a lab is already running in {self.root}; run `fleetplane lab down --dir {self.root}` first"
            )
        names = [s.name for s in self.specs]
        if len(set(names)) != len(names):
            raise LabError(f"spoke names must be unique, got {names}")
        bad = [n for n in names if not _DNS_LABEL.match(n)]
        if bad:
            # Spoke names prefix node names and directory names.
            raise LabError(f"spoke names must be DNS labels (a-z, 0-9, '-', ≤40 chars): {bad}")
        if self.backend == "local" and self.with_hub and importlib.util.find_spec("fastapi") is None:
            raise LabError(
                "the hub is not installed here (pip install 'fleetplane[hub]'); "
                "start the lab without the hub (--no-hub / with_hub=False)"
            )
        t0 = time.monotonic()
        if self.backend == "kind":
            self.root.mkdir(parents=True, exist_ok=True)
            self._save_state()  # before creating clusters, so `lab down` can delete partial ones
            self.spokes = kind.up(self.root, self.specs, self.with_hub, progress=self.progress)
            hub_kc = self.root / "kubeconfigs" / "hub-cluster.kubeconfig"
            if self.with_hub and hub_kc.exists():
                # The hub runs inside this cluster (deploy/helm/hub); reach it by port-forward.
                self.hub = HubInfo(url="", kubeconfig=str(hub_kc), data_dir="")
        else:
            bin_dir = require_binaries(self.bin_dir)
            # A fresh run dir: old etcd data would resurrect the previous lab's objects.
            for sub in ("spokes", "hub", "kubeconfigs", "etcd"):
                shutil.rmtree(self.root / sub, ignore_errors=True)
            self.root.mkdir(parents=True, exist_ok=True)
            self._save_state()
            try:
                self._up_local(bin_dir)
            except BaseException:
                self.progress("startup failed; stopping what was started")
                self.down()
                raise
        self.timings["up"] = time.monotonic() - t0
        self._save_state()
        return self

    def _up_local(self, bin_dir: Path) -> None:
        etcd_url: str | None = None
        if self.shared_etcd:
            self.progress("starting shared etcd")
            etcd_url, _rec = start_etcd(
                "etcd", self.root / "etcd" / "data", bin_dir, self.root / "etcd", [], self._record_shared
            )
        # Spokes start in parallel: most of a spoke's startup is waiting on its apiserver,
        # so overlapping them cuts `lab up` time even on 2 cores.
        with ThreadPoolExecutor(max_workers=max(1, len(self.specs)) + 1) as pool:
            futures: dict[str, Future[Any]] = {}
            if self.with_hub:
                futures["hub"] = pool.submit(self._start_hub)
            for spec in self.specs:
                self.progress(f"starting {spec.name} ({', '.join(spec.profiles)})")
                futures[spec.name] = pool.submit(
                    start_spoke,
                    spec,
                    self.root / "spokes" / spec.name,
                    bin_dir,
                    self._record,
                    etcd_url,
                    self.root / "kubeconfigs" / f"{spec.name}.kubeconfig",
                )
            errors: list[BaseException] = []
            for name, fut in futures.items():
                try:
                    res = fut.result()
                    if isinstance(res, SpokeInfo):
                        self.spokes[name] = res
                        self.progress(f"{name} ready in {res.timings.get('total', 0):.1f}s: {res.server}")
                except BaseException as e:  # collect all, report the first
                    errors.append(e)
            if errors:
                raise errors[0]

    def _record(self, rec: ProcRecord) -> None:
        with self._lock:
            self._records.append(rec)
            self._save_state()

    def _record_shared(self, rec: ProcRecord) -> None:
        self.shared.append(rec)
        self._record(rec)

    def _start_hub(self) -> HubInfo:
        """`fleetplane up` on embedded Postgres in RUN_DIR/hub: HTTPS for kubectl on one port,
        plain HTTP on a second loopback port for the readiness probe (as fleetplane_testing.hubprocess does)."""
        port = self.hub_port or process.free_port()
        http_port = process.free_port()
        data = self.root / "hub"
        data.mkdir(parents=True, exist_ok=True)
        cmd = hub_command(data, port, http_port)
        env = {**os.environ, **self.hub_env} if self.hub_env else None
        rec = process.start("hub", cmd, data / "hub.log", ports=[port, http_port], env=env, cwd=Path.cwd())
        self._record(rec)
        t0 = time.monotonic()
        if not wait_ready(f"http://{LOOPBACK}:{http_port}", rec.alive, HUB_TIMEOUT):
            why = "process exited" if not rec.alive() else f"/readyz not 200 after {HUB_TIMEOUT:.0f}s"
            raise LabStartError("hub", why, rec.log)
        kcfg = self.root / "kubeconfigs" / "hub.kubeconfig"
        kcfg.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data / "admin.kubeconfig", kcfg)
        kcfg.chmod(0o600)
        self.hub = HubInfo(
            url=f"https://{LOOPBACK}:{port}",
            kubeconfig=str(kcfg),
            data_dir=str(data),
            process=rec,
            http_url=f"http://{LOOPBACK}:{http_port}",
        )
        self.timings["hub"] = time.monotonic() - t0
        self.progress(f"hub ready in {self.timings['hub']:.1f}s: {self.hub.url}")
        return self.hub

    def down(self, grace: float = 10.0) -> DownReport:
        """Stop every process this lab (or the lab recorded in root_dir) started."""
        state = self._load_state() or {}
        if self.backend == "kind" or state.get("backend") == "kind":
            kind.down(self.root)
            self._clear_state()
            return DownReport(stopped=["kind clusters"], killed=[], busy_ports=[], leftover_pids=[])
        records = _dedupe(list(self._records) + _records_of(state))
        # Reverse start order: node agents and controllers before the apiserver, etcd last,
        # so nothing spends the grace period retrying a dead dependency.
        records = list(reversed(records))
        # etcd goes last, after everything that talks to it has exited: an apiserver whose
        # etcd vanished spends its whole grace period retrying instead of exiting.
        is_etcd = [r.name == "etcd" or r.name.endswith("/etcd") for r in records]
        killed = process.stop([r for r, e in zip(records, is_etcd, strict=False) if not e], grace=grace)
        killed += process.stop([r for r, e in zip(records, is_etcd, strict=False) if e], grace=grace)
        # The hub's data dir is always RUN_DIR/hub; check it even if the hub died mid-start.
        if (self.root / "hub").is_dir():
            _stop_strays_using(str(self.root / "hub"))
        ports = [p for r in records for p in r.ports]
        busy = process.wait_ports_free(ports)
        leftover = [r.pid for r in records if r.alive()]
        self._records.clear()
        self.spokes.clear()
        self.hub = None
        self._clear_state()
        return DownReport(stopped=[r.name for r in records], killed=killed, busy_ports=busy, leftover_pids=leftover)

    def status(self) -> LabStatus:
        state = self._load_state()
        if not state:
            return LabStatus(backend=self.backend, running=False)
        comps = []
        for r in _records_of(state):
            p = r.process()
            comps.append(
                ComponentStatus(
                    name=r.name,
                    pid=r.pid,
                    alive=p is not None,
                    rss_bytes=r.rss_bytes() if p else 0,
                    ports=r.ports,
                    log=r.log,
                )
            )
        hub_dir = self.root / "hub"
        if hub_dir.is_dir():
            db = _db_processes(str(hub_dir))
            if db:
                comps.append(
                    ComponentStatus(
                        name="hub/postgres",
                        pid=db[0].pid,
                        alive=True,
                        rss_bytes=hub_db_rss_bytes(str(hub_dir)),
                        ports=[],
                        log="",
                    )
                )
        spokes = {}
        for name, d in state.get("spokes", {}).items():
            info = SpokeInfo.from_dict(d)
            spokes[name] = {
                "server": info.server,
                "kubeconfig": info.kubeconfig,
                "rss_bytes": info.rss_bytes(),
                "nodes": len(info.nodes),
                "profiles": info.profiles,
                "region": info.region,
                "ready": _apiserver_ready(info),
            }
        return LabStatus(
            backend=state.get("backend", "local"),
            running=any(c.alive for c in comps) or state.get("backend") == "kind",
            components=comps,
            spokes=spokes,
            hub=state.get("hub"),
        )

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # ----- helpers -----

    def spoke(self, name: str) -> SpokeInfo:
        return self.spokes[name]

    def kubeconfigs(self) -> dict[str, str]:
        out = {n: s.kubeconfig for n, s in self.spokes.items()}
        if self.hub:
            out["hub"] = self.hub.kubeconfig
        return out

    def rss_by_spoke(self) -> dict[str, int]:
        return {n: s.rss_bytes() for n, s in self.spokes.items()}

    @classmethod
    def attach(cls, root_dir: str | Path = DEFAULT_DIR) -> Lab:
        """A Lab for the run dir of an existing lab (for `down`/`status` from another process)."""
        lab = cls(root_dir, spokes=[])
        state = lab._load_state()
        if state:
            lab.backend = state.get("backend", "local")
            lab.spokes = {n: SpokeInfo.from_dict(d) for n, d in state.get("spokes", {}).items()}
            lab.hub = HubInfo.from_dict(state["hub"]) if state.get("hub") else None
            lab.shared = [ProcRecord.from_dict(p) for p in state.get("shared", [])]
            lab._records = _records_of(state)
        return lab

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def _save_state(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        doc = {
            "backend": self.backend,
            "pid_of_starter": os.getpid(),
            "records": [r.to_dict() for r in self._records],
            "shared": [r.to_dict() for r in self.shared],
            "spokes": {n: s.to_dict() for n, s in self.spokes.items()},
            "hub": self.hub.to_dict() if self.hub else None,
            "timings": self.timings,
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        tmp.replace(self.state_path)  # atomic: a concurrent `lab status` never reads half a file

    def _load_state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None

    def _clear_state(self) -> None:
        self.state_path.unlink(missing_ok=True)


def _records_of(state: dict[str, Any]) -> list[ProcRecord]:
    recs = [ProcRecord.from_dict(r) for r in state.get("records", [])]
    for d in state.get("spokes", {}).values():
        recs += [ProcRecord.from_dict(p) for p in d.get("processes", [])]
    if state.get("hub") and state["hub"].get("process"):
        recs.append(ProcRecord.from_dict(state["hub"]["process"]))
    return _dedupe(recs)


def _dedupe(recs: list[ProcRecord]) -> list[ProcRecord]:
    seen: set[tuple[int, float]] = set()
    out = []
    for r in recs:
        key = (r.pid, round(r.create_time, 0))
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _db_processes(data_dir: str) -> list[psutil.Process]:
    """Database server processes running on a data dir inside the hub's data dir, with
    their children. Postgres daemonizes into its own session, so signalling the hub's
    process group does not reach it.

    Matches only processes whose data-directory argument (`-D DIR`, `-DDIR`,
    `--pgdata=DIR`) lies inside our own run dir, so nothing this lab did not start can
    match, not even a `tail -f` of a hub log.
    """
    root = data_dir.rstrip("/") + "/"

    def uses_dir(args: list[str]) -> bool:
        for i, a in enumerate(args):
            val = None
            if a in ("-D", "--pgdata") and i + 1 < len(args):
                val = args[i + 1]
            elif a.startswith("-D") and len(a) > 2:
                val = a[2:]
            elif a.startswith("--pgdata="):
                val = a.split("=", 1)[1]
            if val and (val.rstrip("/") + "/").startswith(root):
                return True
        return False

    found: list[psutil.Process] = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if uses_dir(p.info["cmdline"] or []):
                found.append(p)
                found.extend(p.children(recursive=True))
        except psutil.Error:
            continue
    return found


def _stop_strays_using(data_dir: str) -> None:
    """Stop what `_db_processes` finds: SIGTERM (Postgres "smart" shutdown), then SIGKILL."""
    victims = _db_processes(data_dir)
    for p in victims:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(victims, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass


def hub_db_rss_bytes(data_dir: str) -> int:
    total = 0
    for p in _db_processes(data_dir):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _apiserver_ready(info: SpokeInfo) -> bool:
    if not info.server:
        return False
    try:
        r = httpx.get(
            f"{info.server}/readyz",
            headers={"Authorization": f"Bearer {info.token}"},
            verify=ssl.create_default_context(cafile=info.ca_file) if info.ca_file else False,
            timeout=2,
        )
        return r.status_code == 200
    except httpx.HTTPError:
        return False
