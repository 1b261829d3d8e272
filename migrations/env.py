"""Alembic environment: runs the versioned migrations against FLEETPLANE's database URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from hub.store.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run_migrations_online() -> None:
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
