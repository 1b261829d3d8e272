"""`fleetplane`: the one command. It assembles the commands of each package that is installed.

- the hub (`up`, `controller`, `db`, `token`, `cluster`) when the hub's dependencies are installed
  (`pip install fleetplane[hub]`);
- `place` (the what-if planner) with the placement engine's (`fleetplane[placement]`, part of hub);
- `agent` with the spoke agent's (`fleetplane[agent]`);
- `lab` with the lab's (`fleetplane[lab]`).

Which packages are installed is decided by looking for their third-party dependencies, never by
catching ImportError around the project's own modules: a typo in our code must fail loudly.
A command whose extra is missing is still listed and says which extra to install.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import typer
from rich.markup import escape

from fleetplane_types.version import fleetplane_version

app = typer.Typer(help="Fleetplane: place AI workloads across Kubernetes clusters.", no_args_is_help=True)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fleetplane {fleetplane_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    pass


EXTRAS: dict[str, tuple[str, ...]] = {
    "hub": (
        "fastapi",
        "uvicorn",
        "sqlalchemy",
        "alembic",
        "psycopg",
        "pydantic_settings",
        "jsonpatch",
        "prometheus_client",
        "cryptography",
        "numpy",
        "networkx",
    ),
    "placement": ("numpy", "networkx"),
    "agent": ("kopf", "httpx"),
    "lab": ("httpx", "psutil"),
}


def installed(extra: str) -> bool:
    """Are the third-party packages of this extra importable?"""
    return all(importlib.util.find_spec(m) is not None for m in EXTRAS[extra])


def _missing(name: str, extra: str) -> None:
    # Typer renders help as Rich markup (rich is installed with the base package): unescaped,
    # "[hub]" would be read as a style tag and vanish, leaving "pip install 'fleetplane'".
    @app.command(
        name,
        help=escape(f"(not installed: pip install 'fleetplane[{extra}]')"),
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def missing() -> None:
        typer.echo(
            f"fleetplane {name}: this installation lacks it; install it with: pip install 'fleetplane[{extra}]'",
            err=True,
        )
        raise typer.Exit(2)


if installed("hub"):
    from fleetplane import demo
    from hub import cli as hub_cli
    from hub.settings import DEFAULT_PORT, Settings

    hub_cli.register(app)

    @app.command()
    def up(
        data_dir: Path | None = typer.Option(
            None,
            "--data-dir",
            help="Embedded Postgres data and kubeconfigs (env FLEETPLANE_DATA_DIR; default .fleetplane).",
        ),
        port: int | None = typer.Option(
            None,
            "--port",
            help=f"HTTPS port (env FLEETPLANE_PORT; default {DEFAULT_PORT}). kubectl sends tokens only over TLS.",
        ),
        http_port: int | None = typer.Option(None, "--http-port", help="Also serve plain HTTP here (loopback tools)."),
        host: str | None = typer.Option(
            None, "--host", help="Listen address (env FLEETPLANE_HOST; default 127.0.0.1)."
        ),
        database_url: str | None = typer.Option(
            None, "--database-url", help="Use this Postgres instead of the embedded one (env FLEETPLANE_DATABASE_URL)."
        ),
        with_demo: bool = typer.Option(
            False, "--demo", help="Also start a small SIMULATED fleet with sample workloads."
        ),
        workers: str | None = typer.Option(
            None,
            "--workers",
            help=(
                "API worker processes serving the port(s), plus one controller process (env FLEETPLANE_WORKERS; "
                "default auto: the number of cores, at most 4). 1: one process runs the API and the controllers."
            ),
        ),
    ) -> None:
        """Run the hub (embedded Postgres unless a database URL is given)."""
        settings = Settings.load(
            data_dir=data_dir,
            port=port,
            http_port=http_port,
            host=host,
            database_url=database_url,
            workers=_workers(workers),
        )
        hub_cli.run_hub(
            settings,
            before_serve=demo.before_serve(settings.data_dir) if with_demo else None,
            controller_args=["--demo"] if with_demo else [],
        )

    @app.command()
    def controller(
        data_dir: Path | None = typer.Option(
            None,
            "--data-dir",
            help="Embedded Postgres data (env FLEETPLANE_DATA_DIR; default .fleetplane).",
        ),
        database_url: str | None = typer.Option(
            None, "--database-url", help="Use this Postgres instead of the embedded one (env FLEETPLANE_DATABASE_URL)."
        ),
        host: str | None = typer.Option(
            None, "--host", help="Listen address of --health-port (env FLEETPLANE_HOST; default 127.0.0.1)."
        ),
        health_port: int | None = typer.Option(
            None, "--health-port", min=1, max=65535, help="Serve /healthz, /livez and /readyz (plain HTTP) here."
        ),
        with_demo: bool = typer.Option(
            False, "--demo", help="Also run the small SIMULATED demo fleet against the hub's API."
        ),
    ) -> None:
        """Run the federation controller (one leader per database; others stand by), the event
        compactor and no API: for hub replicas that serve the API with controllers off."""
        settings = hub_cli.inherited_settings() or Settings.load(
            data_dir=data_dir, database_url=database_url, host=host
        )
        hub_cli.run_controller(
            settings,
            before_serve=demo.before_serve(settings.data_dir) if with_demo else None,
            health_port=health_port,
        )

    def _workers(value: str | None) -> int | str | None:
        if value is None or value == "auto":
            return value
        if value.isdigit() and int(value) >= 1:
            return int(value)
        raise typer.BadParameter(f'"{value}" is not auto or a number of processes', param_hint="--workers")
else:
    for _name in ("up", "controller", "db", "token", "cluster"):
        _missing(_name, "hub")

if installed("placement"):
    from placement.cli import place_command

    app.command("place", help="What-if: place workloads on a fleet described by manifests (no hub needed).")(
        place_command
    )
else:
    _missing("place", "placement")

if installed("agent"):
    from spoke_agent.cli import agent_command

    app.command("agent", help="Run the spoke agent.")(agent_command)
else:
    _missing("agent", "agent")

if installed("lab"):
    from fleetplane_lab.cli import lab_app

    app.add_typer(lab_app, name="lab", help="Local multi-cluster lab: hub + real spoke control planes.")
else:
    _missing("lab", "lab")


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")
    app()
