"""Table definitions shared by the store and the Alembic migrations.

- objects: one row per live object, JSON body, keyed by (resource, namespace, name).
- events: the change log watchers resume from; rv is the global resourceVersion.
- rv_counter: ONE row. Taking the next resourceVersion is an UPDATE of that row, so its row
  lock is held until commit and resourceVersions are handed out strictly in commit order and
  without gaps (a rolled-back transaction gives its numbers back). Postgres sequences do not
  give this: a later nextval can commit first, and a watcher would skip the earlier one.
- store_meta: small key/value facts (the compaction floor).
- tokens: bearer tokens (stored as SHA-256) mapped to subjects; join tokens are single-use and
  expire; any token may be revoked; `id` (a prefix of the hash) names a token without its secret.
- cluster_leases: one row per cluster, renewed by its agent every heartbeat (hub.store.leases):
  liveness without rewriting the Cluster object or appending events (0004).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Index, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

objects = Table(
    "objects",
    metadata,
    Column("resource", Text, primary_key=True),
    Column("namespace", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("uid", Text, nullable=False),
    Column("rv", BigInteger, nullable=False),
    Column("data", JSONB, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("rv", BigInteger, primary_key=True),
    Column("resource", Text, nullable=False),
    Column("namespace", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("prev", JSONB, nullable=True),  # what selectors read of the previous version (0003)
)
Index("events_resource_rv", events.c.resource, events.c.rv)

rv_counter = Table(
    "rv_counter",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("rv", BigInteger, nullable=False),
)

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_sha256", Text, primary_key=True),
    Column("kind", Text, nullable=False),  # admin | team | agent | join
    Column("subject", Text, nullable=False),  # user name, team name, or cluster name
    Column("namespaces", JSONB, nullable=True),  # team tokens: namespaces they may use
    Column("used", Boolean, nullable=False, server_default="false"),  # join tokens only
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("id", Text, nullable=False),  # public id: first 12 hex digits of token_sha256
    Column("expires_at", DateTime(timezone=True), nullable=True),  # NULL: never (join tokens always expire)
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),  # refreshed at most once a minute
)
Index("tokens_id", tokens.c.id, unique=True)
Index("tokens_kind_subject", tokens.c.kind, tokens.c.subject)

cluster_leases = Table(
    "cluster_leases",
    metadata,
    Column("cluster", Text, primary_key=True),
    Column("holder", Text, nullable=False),  # the agent's identity (who renewed last)
    Column("renew_time", DateTime(timezone=True), nullable=False, server_default=func.now()),  # database clock
    Column("duration_seconds", Float, nullable=False),  # the agent's lease duration T
)
