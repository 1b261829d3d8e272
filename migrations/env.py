"""Alembic environment: runs the versioned migrations against FLEETPLANE's database URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from hub.store.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")

MIGRATION_LOCK = 0x666C6565  # "flee": the advisory lock every `fleetplane db upgrade` takes
"""Hub replicas starting on a fresh database at once (a Helm install with N replicas) migrate one
at a time: the lock is held until the migration transaction commits, and the next reads the
version table after it, finds head and does nothing."""


def run_migrations_online() -> None:
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            context.run_migrations()
    engine.dispose()


run_migrations_online()
