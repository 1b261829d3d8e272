"""Child processes for tests and benchmarks: the spoke agent as a real process (so a restart is
a real restart), stopping process groups, and the real kubectl."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetplane_testing.hubprocess import REPO
from fleetplane_testing.waiting import wait_until


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@dataclass
class AgentProcess:
    """`python -m spoke_agent` as a real process (so a restart is a real restart)."""

    args: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self) -> AgentProcess:
        self.starts += 1
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child process writes it for its whole life)
        log.write(f"\n===== start #{self.starts} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spoke_agent", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.extra_env},
            cwd=REPO,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye, like a node crash or an OOM kill."""
        if self.proc:
            stop_process(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_ready(self, timeout: float = 60) -> None:
        starts = self.starts

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            section = self.log().split(f"===== start #{starts} =====")[-1]
            return "agent ready" in section

        wait_until("the agent is ready", ready, timeout, retry_on=(Exception,))


def kubectl(kubeconfig: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True, text=True, check=check)
