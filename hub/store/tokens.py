"""Bearer tokens in the `tokens` table: stored as SHA-256, the plain token shown once.

Kinds: admin, team (with its namespaces), agent (per cluster), metrics (reads /metrics only),
join (single-use, expiring, mints the agent credential). Who may do what with a token is
decided in hub.registry.access (and, for metrics tokens, hub.web.authn).

Lifecycle (docs/security.md): every token has a public `id` (the first 12 hex digits of its
hash) to name it without the secret; a token may expire (join tokens always do) and may be
revoked; a join revokes the cluster's previous agent credentials in the same transaction that
mints the new one, so a re-join rotates the credential.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.settings import JOIN_TOKEN_TTL_SECONDS
from hub.store.store import Store

PREFIXES = {"admin": "fpa", "team": "fpt", "agent": "fpc", "metrics": "fpm", "join": "fpj"}

ID_LENGTH = 12
"""Hex digits of the hash that name a token (48 bits: unique among any realistic number of tokens)."""

JOIN_LOCK_CLASS = 0x4A4F494E  # "JOIN": the first key of the per-cluster join lock

LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is refreshed at most this often per token, so a busy token costs one small
UPDATE a minute, not one per authentication."""


@dataclass(frozen=True)
class TokenRecord:
    """The credential a bearer token stands for."""

    kind: str  # admin | team | agent | metrics
    subject: str
    namespaces: tuple[str, ...]
    expires_at: datetime | None = None


@dataclass(frozen=True)
class TokenInfo:
    """One row of `fleetplane token list`: everything about a token except its secret."""

    id: str
    kind: str
    subject: str
    namespaces: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    used: bool
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.kind == "join" and self.used:
            return "used"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class JoinRefusal(Enum):
    """Why a join token was not accepted (the join endpoint says which, to the token's holder)."""

    UNKNOWN = "is not valid for this cluster"
    USED = "has already been used"
    EXPIRED = "has expired"
    REVOKED = "has been revoked"


@dataclass(frozen=True)
class JoinOutcome:
    credential: str | None  # the cluster's new agent token, when the join was accepted
    refusal: JoinRefusal | None = None
    rotated: int = 0  # earlier agent credentials of the cluster revoked by this join


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token: str) -> str:
    """The public id of a token: safe to print, log and pass to `fleetplane token revoke`."""
    return token_hash(token)[:ID_LENGTH]


def new_token(kind: str) -> str:
    return f"{PREFIXES[kind]}-{secrets.token_urlsafe(24)}"


async def _insert(
    conn: AsyncConnection, kind: str, subject: str, namespaces: list[str] | None, ttl_seconds: float | None
) -> str:
    token = new_token(kind)
    h = token_hash(token)
    await conn.execute(
        text(
            "INSERT INTO tokens (token_sha256, id, kind, subject, namespaces, expires_at) "
            "VALUES (:h, :id, :k, :s, CAST(:n AS jsonb), "
            "CASE WHEN CAST(:ttl AS double precision) IS NULL THEN NULL "
            "ELSE now() + make_interval(secs => CAST(:ttl AS double precision)) END)"
        ),
        {
            "h": h,
            "id": h[:ID_LENGTH],
            "k": kind,
            "s": subject,
            "n": None if namespaces is None else json.dumps(namespaces),
            "ttl": ttl_seconds,
        },
    )
    return token


async def create_token(
    store: Store,
    kind: str,
    subject: str,
    namespaces: list[str] | None = None,
    *,
    ttl_seconds: float | None = None,
) -> str:
    """Mint a token of `kind` for `subject`; returns the plain token (not stored).

    Join tokens expire after `ttl_seconds` (default JOIN_TOKEN_TTL_SECONDS); other kinds only
    when `ttl_seconds` is given."""
    if kind not in PREFIXES:
        raise ValueError(f"unknown token kind {kind!r}")
    if kind == "join" and ttl_seconds is None:
        ttl_seconds = JOIN_TOKEN_TTL_SECONDS
    async with store.begin() as conn:
        return await _insert(conn, kind, subject, namespaces, ttl_seconds)


async def exchange_join_token_in(conn: AsyncConnection, token: str, cluster: str) -> JoinOutcome:
    """Redeem a join token for `cluster` and mint the cluster's agent credential, revoking the
    cluster's earlier credentials, inside the caller's transaction: exactly one credential of a
    cluster is valid after a join, and a refused join changes nothing. The join endpoint
    registers the Cluster in the same transaction, so a failure after the exchange cannot strand
    a cluster with a spent join token and a revoked credential."""
    # Two joins of one cluster (with two join tokens) must not both leave a credential: one
    # waits for the other. The two-key form does not overlap the leader lock's bigint key.
    await conn.execute(text("SELECT pg_advisory_xact_lock(:cls, hashtext(:s))"), {"cls": JOIN_LOCK_CLASS, "s": cluster})
    row = (
        await conn.execute(
            text(
                "SELECT used, revoked_at IS NOT NULL, expires_at IS NOT NULL AND expires_at <= now() "
                "FROM tokens WHERE token_sha256 = :h AND kind = 'join' AND subject = :s FOR UPDATE"
            ),
            {"h": token_hash(token), "s": cluster},
        )
    ).first()
    if row is None:
        return JoinOutcome(None, JoinRefusal.UNKNOWN)
    used, revoked, expired = row
    if revoked:
        return JoinOutcome(None, JoinRefusal.REVOKED)
    if used:
        return JoinOutcome(None, JoinRefusal.USED)
    if expired:
        return JoinOutcome(None, JoinRefusal.EXPIRED)
    await conn.execute(text("UPDATE tokens SET used = true WHERE token_sha256 = :h"), {"h": token_hash(token)})
    rotated = (
        await conn.execute(
            text(
                "UPDATE tokens SET revoked_at = now() "
                "WHERE kind = 'agent' AND subject = :s AND revoked_at IS NULL RETURNING id"
            ),
            {"s": cluster},
        )
    ).all()
    credential = await _insert(conn, "agent", cluster, None, None)
    return JoinOutcome(credential, None, len(rotated))


_LOOKUP = text(
    # ONE statement in autocommit (every request whose token is not cached runs it): read the
    # credential and, at most once per LAST_USED_RESOLUTION, record its use. The UPDATE's own
    # WHERE repeats the checks, so a token revoked between the two parts is not marked used.
    "WITH t AS (SELECT kind, subject, namespaces, expires_at, "
    "last_used_at IS NULL OR last_used_at < now() - make_interval(secs => CAST(:res AS double precision)) AS stale "
    "FROM tokens WHERE token_sha256 = :h AND kind <> 'join' AND revoked_at IS NULL "
    "AND (expires_at IS NULL OR expires_at > now())), "
    "u AS (UPDATE tokens SET last_used_at = now() WHERE token_sha256 = :h AND EXISTS (SELECT 1 FROM t WHERE t.stale) "
    "RETURNING 1) "
    "SELECT kind, subject, namespaces, expires_at, (SELECT count(*) FROM u) FROM t"
)


async def lookup_token(store: Store, token: str) -> TokenRecord | None:
    """The credential a bearer token stands for: None when unknown, expired or revoked (join
    tokens are not credentials). Records the use (at most once a minute per token)."""
    async with store.autocommit() as conn:
        row = (
            await conn.execute(_LOOKUP, {"h": token_hash(token), "res": LAST_USED_RESOLUTION.total_seconds()})
        ).first()
    if row is None:
        return None
    return TokenRecord(row[0], row[1], tuple(row[2] or ()), row[3])


async def list_tokens(store: Store, *, include_inactive: bool = False) -> list[TokenInfo]:
    """Every token (by default only those that still work), oldest first; never the secret."""
    async with store.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT id, kind, subject, namespaces, created_at, expires_at, last_used_at, used, revoked_at "
                    "FROM tokens ORDER BY created_at, id"
                )
            )
        ).all()
    now = datetime.now(UTC)
    infos = [TokenInfo(r[0], r[1], r[2], tuple(r[3] or ()), r[4], r[5], r[6], r[7], r[8]) for r in rows]
    return infos if include_inactive else [t for t in infos if t.state(now) == "active"]


async def find_tokens(store: Store, id_prefix: str) -> list[TokenInfo]:
    """Tokens whose public id starts with `id_prefix` (hex digits only; callers check length)."""
    prefix = id_prefix.lower()
    return [t for t in await list_tokens(store, include_inactive=True) if t.id.startswith(prefix)]


async def revoke_token(store: Store, id_: str) -> bool:
    """Revoke the token with this exact public id; False when it was already revoked."""
    async with store.begin() as conn:
        row = (
            await conn.execute(
                text("UPDATE tokens SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL RETURNING id"),
                {"id": id_},
            )
        ).first()
    return row is not None
