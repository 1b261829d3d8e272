"""Cluster leases: agent liveness outside the objects and events tables.

As kube-node-lease did for Nodes, each spoke agent renews a small lease row every heartbeat
instead of rewriting its Cluster object: a renewal is one UPDATE of one narrow row, with no
resourceVersion, no event row and no watcher woken. The Cluster object changes only when
what the agent reports (capacity, conditions, versions) changes.

- cluster: the Cluster's name (one lease per cluster).
- holder: the agent's identity (informational: who renewed last; the credential decides who may).
- renew_time: the database clock at the last renewal (now()), so agents' clocks do not matter.
- duration_seconds: the agent's lease duration T; it stops its failover: Replace workloads
  when it could not renew for that long (docs/agent.md, self-fencing).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_leases",
        sa.Column("cluster", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("renew_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("duration_seconds", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_leases")
