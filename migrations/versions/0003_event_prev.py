"""Events carry what a watcher's selector needs of the object's previous version.

A watch with a label or field selector must send DELETED when an object stops matching and
ADDED when it starts (as kube-apiserver's watch cache does, from prevObject). The event log
keeps, per MODIFIED/DELETED event, a small projection of the previous version: name,
namespace, labels and the resource's selectable fields (hub.registry sets the projection).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("prev", JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("events", "prev")
