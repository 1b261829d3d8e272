"""Token lifecycle: a public id, expiry, revocation and last use on every token.

- id: the first 12 hex digits of the token's SHA-256, so a token can be named (listed, revoked)
  without its secret. 48 bits of a hash of 192 random bits tell an attacker nothing.
- expires_at: join tokens expire (default 24 h); other kinds may (NULL = never).
- revoked_at: `fleetplane token revoke`, and an agent's previous credential on re-join.
- last_used_at: refreshed at most once a minute per token (cheap enough for `token list`).

Join tokens minted before this migration get created_at + 24 h, the new default.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("id", sa.Text, nullable=True))
    op.add_column("tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tokens", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE tokens SET id = substr(token_sha256, 1, 12)")
    op.execute("UPDATE tokens SET expires_at = created_at + interval '24 hours' WHERE kind = 'join'")
    op.alter_column("tokens", "id", nullable=False)
    op.create_index("tokens_id", "tokens", ["id"], unique=True)
    op.create_index("tokens_kind_subject", "tokens", ["kind", "subject"])


def downgrade() -> None:
    op.drop_index("tokens_kind_subject", table_name="tokens")
    op.drop_index("tokens_id", table_name="tokens")
    for column in ("last_used_at", "revoked_at", "expires_at", "id"):
        op.drop_column("tokens", column)
