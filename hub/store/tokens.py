"""Bearer tokens in the `tokens` table: stored as SHA-256, the plain token shown once.

Kinds: admin, team (with its namespaces), agent (per cluster), join (single-use, mints the
agent credential). Who may do what with a token is decided in hub.registry.access.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import text

from hub.store.store import Store

PREFIXES = {"admin": "fpa", "team": "fpt", "agent": "fpc", "join": "fpj"}


@dataclass(frozen=True)
class TokenRecord:
    kind: str  # admin | team | agent
    subject: str
    namespaces: tuple[str, ...]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(kind: str) -> str:
    return f"{PREFIXES[kind]}-{secrets.token_urlsafe(24)}"


async def create_token(store: Store, kind: str, subject: str, namespaces: list[str] | None = None) -> str:
    """Mint a token of `kind` for `subject`; returns the plain token (not stored)."""
    token = new_token(kind)
    async with store.begin() as conn:
        await conn.execute(
            text("INSERT INTO tokens (token_sha256, kind, subject, namespaces) VALUES (:h, :k, :s, CAST(:n AS jsonb))"),
            {
                "h": token_hash(token),
                "k": kind,
                "s": subject,
                "n": None if namespaces is None else json.dumps(namespaces),
            },
        )
    return token


async def redeem_join_token(store: Store, token: str, cluster: str) -> bool:
    """Mark a join token used if it is valid, unused and for this cluster. Single use."""
    async with store.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "UPDATE tokens SET used = true WHERE token_sha256 = :h AND kind = 'join' "
                    "AND subject = :s AND NOT used RETURNING subject"
                ),
                {"h": token_hash(token), "s": cluster},
            )
        ).first()
    return row is not None


async def lookup_token(store: Store, token: str) -> TokenRecord | None:
    """The credential a bearer token stands for (join tokens are not credentials)."""
    async with store.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT kind, subject, namespaces FROM tokens WHERE token_sha256 = :h AND kind <> 'join'"),
                {"h": token_hash(token)},
            )
        ).first()
    return TokenRecord(row[0], row[1], tuple(row[2] or ())) if row else None
