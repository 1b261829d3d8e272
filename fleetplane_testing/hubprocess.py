"""The one hub launcher: run `fleetplane up` as a child process and wait until it is ready.

Used by the API tests, the agent and e2e suites, the lab (`hub_command`, `wait_ready`) and the
benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fleetplane_testing.ports import LOOPBACK, free_port

__all__ = ["FLEETPLANE", "REPO", "HubProcess", "free_port", "hub_command", "wait_ready"]

REPO = Path(__file__).resolve().parent.parent
FLEETPLANE = [sys.executable, "-m", "fleetplane"]
"""The `fleetplane` command of this interpreter (works from a checkout and from an install)."""


def hub_command(
    data_dir: Path,
    port: int,
    http_port: int | None = None,
    *extra_args: str,
    program: list[str] | None = None,
    workers: int | str = 1,
) -> list[str]:
    """`fleetplane up` on `data_dir`: HTTPS on `port`, plain HTTP on `http_port` for probes.
    `program` replaces `python -m fleetplane` (a benchmark's profiling wrapper). `workers` is 1
    (one process: per-process limits mean what a suite asserts) unless a caller asks for more."""
    cmd = [*(program or FLEETPLANE), "up", "--data-dir", str(data_dir), "--port", str(port), "--workers", str(workers)]
    if http_port:
        cmd += ["--http-port", str(http_port)]
    return [*cmd, *extra_args]


def wait_ready(url: str, alive: Callable[[], bool], timeout: float, *, verify: str | bool = True) -> bool:
    """Poll `url`/readyz until it answers 200; False on timeout or when `alive()` turns False."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            if httpx.get(url + "/readyz", timeout=1, verify=verify).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


@dataclass
class HubProcess:
    data_dir: Path
    database_url: str | None  # None: the hub starts embedded Postgres in data_dir
    port: int
    http_port: int
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    program: list[str] | None = None  # instead of `python -m fleetplane` (see hub_command)
    workers: int = 1
    """API worker processes (`fleetplane up --workers`); above 1 the hub also runs a controller
    process, all in the hub's own process group."""
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir / "hub.log"

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    @property
    def ca(self) -> Path:
        return self.data_dir / "hub-cert.pem"

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def start(self, timeout: float | None = None) -> HubProcess:
        """Start the hub and wait until it answers /readyz (default: 60 s, and 45 s more per
        extra worker process on a busy machine); a hub that does not get there is killed."""
        if timeout is None:
            timeout = 60 + 45 * (self.workers - 1)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = self._env()
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child process writes it for its whole life)
        self.proc = subprocess.Popen(
            hub_command(
                self.data_dir, self.port, self.http_port, *self.extra_args, program=self.program, workers=self.workers
            ),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = self.proc
        if wait_ready(self.http_url, lambda: proc.poll() is None, timeout):
            return self
        if proc.poll() is not None:
            self.stop(kill=True)  # its children, if any are left
            raise RuntimeError(f"hub exited with {proc.returncode}:\n{self.log_tail()}")
        self.stop(kill=True)
        raise RuntimeError(f"hub not ready in {timeout}s:\n{self.log_tail()}")

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (a clean drain), or with `kill` SIGKILL to every process of the hub at once
        (the parent, its API workers and its controller: a crash of the whole hub)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if kill:
                self._kill_group()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10 if not kill else 5)
            except subprocess.TimeoutExpired:
                self._kill_group()
                self.proc.wait(5)
        if self.processes():  # children outliving a parent that is gone: never leave them running
            deadline = time.monotonic() + 15
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.1)
            self._kill_group()

    def kill_parent(self) -> None:
        """SIGKILL the `fleetplane up` process only (its children must then stop on their own)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5)

    def _kill_group(self) -> None:
        # start() put the hub in its own session: its process group id is the parent's pid.
        # Embedded Postgres is not in it (pg_ctl starts the server in a session of its own).
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def processes(self) -> dict[int, str]:
        """Live processes of this hub (pid → command line): the parent and whatever it started
        in its process group (API workers, the controller). Linux /proc; zombies not counted."""
        if self.proc is None:
            return {}
        found: dict[int, str] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if fields[0] == "Z" or int(fields[2]) != self.proc.pid:  # state, pgrp
                    continue
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except (OSError, ValueError):
                continue
        return found

    def worker_pids(self) -> list[int]:
        """The pids of the hub's API worker processes (none in a one-process hub)."""
        return sorted(pid for pid, cmd in self.processes().items() if cmd.endswith("fleetplane api-worker"))

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the kube and REST APIs (plain HTTP port, bearer token)."""
        tok = self.admin_token if token is None else token
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(base_url=self.http_url, headers=headers, timeout=30)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        if self.database_url:
            env["FLEETPLANE_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def cli(self, *args: str) -> str:
        env = self._env()
        out = subprocess.run([*FLEETPLANE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"fleetplane {' '.join(args)} failed: {out.stderr}")
        return out.stdout.strip()

    def team(self, name: str, *namespaces: str) -> tuple[str, Path]:
        """Create a team token; returns (token, kubeconfig path)."""
        kc = self.data_dir / f"team-{name}.kubeconfig"
        ns_args = [a for ns in namespaces for a in ("--namespace", ns)]
        tok = self.cli(
            "token",
            "create",
            "--team",
            name,
            *ns_args,
            "--data-dir",
            str(self.data_dir),
            "--kubeconfig",
            str(kc),
            "--server",
            self.url,
        )
        return tok.splitlines()[-1], kc
