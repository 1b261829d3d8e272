"""Schema migrations on a real Postgres: hub replicas that start on one fresh database at once
(a Helm install with N replicas, each running `fleetplane db upgrade` or migrating at start)
all succeed and leave the schema at head exactly once (migrations/env.py's advisory lock)."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa

from hub.store.database import MIGRATIONS_DIR, sqlalchemy_url

REPLICAS = 4
UPGRADE = "import sys; from hub.store.database import upgrade; upgrade(sys.argv[1])"
# Imports first, then waits for the go on stdin: the replicas' migrations really overlap.
UPGRADE_ON_GO = (
    "import sys; from hub.store.database import upgrade; import alembic.command, sqlalchemy.dialects.postgresql;"
    "print('ready', flush=True); sys.stdin.readline(); upgrade(sys.argv[1])"
)


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def test_replicas_migrating_one_fresh_database_at_once_all_succeed(postgres) -> None:  # type: ignore[no-untyped-def]
    url = postgres.create_database("fp_test_concurrent_migrations")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE_ON_GO, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(REPLICAS)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outputs = [(p.wait(timeout=300), p.stdout.read() if p.stdout else "") for p in procs]
    failed = [out for rc, out in outputs if rc != 0]
    assert not failed, f"{len(failed)} of {REPLICAS} concurrent upgrades failed; first:\n{failed[0][-3000:]}"

    engine = sa.create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            versions = [r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert versions == [_head()]
    assert {"objects", "events"} <= tables, tables

    # And once more on the migrated database: a no-op that succeeds.
    again = subprocess.run([sys.executable, "-c", UPGRADE, url], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
