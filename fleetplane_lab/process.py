"""Child processes of the lab: start each in its own process group, record, stop, and check.

Everything the lab starts is described by a ProcRecord that is written to the run dir, so a
later `fleetplane lab down` (another Python process) can stop exactly what was started:
it signals the recorded process group, and refuses to touch a PID whose start time no
longer matches (the PID was reused by something else).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from fleetplane_testing.ports import LOOPBACK, free_port, free_ports, port_in_use

__all__ = ["LOOPBACK", "ProcRecord", "free_port", "free_ports", "port_in_use"]


@dataclass
class ProcRecord:
    """One started process: enough to find it, stop it and explain it later."""

    name: str  # e.g. spoke-1/kube-apiserver
    pid: int
    create_time: float  # psutil's start time; guards against PID reuse
    cmd: list[str]
    log: str
    ports: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProcRecord:
        return cls(**d)

    def process(self) -> psutil.Process | None:
        """The live process if it is still the one we started, else None."""
        try:
            p = psutil.Process(self.pid)
            # create_time is rounded differently across calls; 1 s tolerance is plenty
            # because a reused PID would have started long after.
            if abs(p.create_time() - self.create_time) > 1.0 or p.status() == psutil.STATUS_ZOMBIE:
                return None
            return p
        except psutil.Error:
            return None

    def alive(self) -> bool:
        return self.process() is not None

    def group_members(self) -> list[psutil.Process]:
        """Live processes of this record's process group (the leader may already be gone).

        Each component leads its own group (start_new_session), so PGID == recorded PID.
        Linux never hands out a PID that is still some group's PGID, so if the PID now
        belongs to a different process, our group is empty.
        """
        try:
            p = psutil.Process(self.pid)
            if abs(p.create_time() - self.create_time) > 1.0:
                return []
        except psutil.Error:
            pass
        members = []
        for p in psutil.process_iter():
            try:
                if os.getpgid(p.pid) == self.pid and p.status() != psutil.STATUS_ZOMBIE:
                    members.append(p)
            except (ProcessLookupError, psutil.Error):
                continue
        return members

    def rss_bytes(self) -> int:
        total = 0
        for p in self.group_members():
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total


def start(
    name: str,
    cmd: Sequence[str],
    log: Path,
    ports: Iterable[int] = (),
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcRecord:
    """Start `cmd` in a new session (own process group, no controlling terminal).

    A new session keeps the component alive after `fleetplane lab up` returns and keeps a
    Ctrl-C in the user's terminal from reaching it; `stop` signals the whole group so
    helpers a component forks (e.g. Postgres under the hub) go too.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=cwd,
        )
    try:
        ctime = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        ctime = time.time()
    return ProcRecord(name=name, pid=proc.pid, create_time=ctime, cmd=list(cmd), log=str(log), ports=list(ports))


def stop(records: Sequence[ProcRecord], grace: float = 10.0) -> list[str]:
    """SIGTERM every record's process group, wait up to `grace` s, then SIGKILL what is left.

    Returns the names of records that needed SIGKILL (for the caller's report). Reaps
    children of this Python process so none linger as zombies.
    """
    groups = {r.name: r.group_members() for r in records}
    for r in records:
        for p in groups[r.name]:
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.Error:
                pass
    everyone = [p for ms in groups.values() for p in ms]
    _, alive = psutil.wait_procs(everyone, timeout=grace)
    killed: list[str] = []
    if alive:
        for r in records:
            if any(p in alive for p in groups[r.name]):
                killed.append(r.name)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=5)
    # Reap direct children so their PIDs really disappear from the process table.
    for r in records:
        try:
            os.waitpid(r.pid, os.WNOHANG)
        except ChildProcessError:
            pass
    return killed


def wait_ports_free(ports: Iterable[int], timeout: float = 10.0) -> list[int]:
    """Wait until nothing listens on `ports`; return the ones still busy after `timeout`."""
    pending = list(ports)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if port_in_use(p)]
        if pending:
            time.sleep(0.1)
    return pending


def log_tail(path: str | Path, lines: int = 30) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(text.splitlines()[-lines:])
