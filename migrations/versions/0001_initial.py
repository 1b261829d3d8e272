"""Initial store: objects, event log, resourceVersion counter, meta, tokens.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("resource", sa.Text, primary_key=True),
        sa.Column("namespace", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("uid", sa.Text, nullable=False),
        sa.Column("rv", sa.BigInteger, nullable=False),
        sa.Column("data", JSONB, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("rv", sa.BigInteger, primary_key=True),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("events_resource_rv", "events", ["resource", "rv"])
    op.create_table(
        "rv_counter",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("rv", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO rv_counter (id, rv) VALUES (1, 0)")
    op.create_table(
        "store_meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.execute("INSERT INTO store_meta (key, value) VALUES ('compacted_rv', '0')")
    op.create_table(
        "tokens",
        sa.Column("token_sha256", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("namespaces", JSONB, nullable=True),
        sa.Column("used", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for t in ("tokens", "store_meta", "rv_counter", "events", "objects"):
        op.drop_table(t)
