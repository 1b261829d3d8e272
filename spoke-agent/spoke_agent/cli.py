"""`fleetplane agent`: the typer command. The hub CLI registers `agent_command`;
`python -m spoke_agent` runs it standalone.
"""

from __future__ import annotations

import logging
import sys
from enum import Enum

import typer

from .errors import JoinRefused, PermanentError


class BackendName(str, Enum):
    kubernetes = "kubernetes"
    simulated = "simulated"


def agent_command(
    hub: str = typer.Option(..., "--hub", envvar="FLEETPLANE_HUB", help="Hub URL, e.g. https://hub.example:8443"),
    join_token: str | None = typer.Option(
        None,
        "--join-token",
        envvar="FLEETPLANE_JOIN_TOKEN",
        help="Single-use token from `fleetplane cluster join-token create NAME`; only needed on first start "
        "(or put it in the state Secret under joinToken).",
    ),
    cluster_name: str | None = typer.Option(
        None, "--cluster-name", envvar="FLEETPLANE_CLUSTER_NAME", help="This cluster's name on the hub."
    ),
    kubeconfig: str | None = typer.Option(
        None, "--kubeconfig", help="Spoke kubeconfig; default: $KUBECONFIG, in-cluster, ~/.kube/config."
    ),
    backend: BackendName = typer.Option(
        BackendName.kubernetes, "--backend", help="kubernetes, or simulated (an in-memory fake cluster)."
    ),
    profile: str | None = typer.Option(
        None, "--profile", help="Simulated backend: YAML with node pools and job run times."
    ),
    config: str | None = typer.Option(
        None, "--config", help="Agent settings YAML (allowed kinds/namespaces, intervals)."
    ),
    state_secret: str | None = typer.Option(
        None,
        "--state-secret",
        help="namespace/name of the Secret holding the credential (default from config: fleetplane-system/fleetplane-agent).",
    ),
    state_file: str | None = typer.Option(
        None, "--state-file", help="Simulated backend: file to keep the credential in across restarts."
    ),
    heartbeat_seconds: float | None = typer.Option(
        None, "--heartbeat-seconds", help="Seconds between capacity reports without changes (default 15)."
    ),
    hub_ca: str | None = typer.Option(
        None,
        "--hub-ca",
        envvar="FLEETPLANE_HUB_CA",
        help="PEM file of the CA that signed the hub's certificate (default: system CAs).",
    ),
    insecure_hub: bool = typer.Option(
        False, "--insecure-skip-tls-verify", help="Do not verify the hub's TLS certificate (lab only)."
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        envvar="FLEETPLANE_AGENT_METRICS_PORT",
        help="Serve Prometheus metrics on this port at /metrics (plain HTTP; default: off). docs/observability.md.",
    ),
    metrics_address: str = typer.Option(
        "127.0.0.1",
        "--metrics-address",
        help="Address the metrics port listens on (with --metrics-port; default loopback only: in a pod, "
        "pass the pod IP or 0.0.0.0 for Prometheus to reach it).",
    ),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING."),
) -> None:
    """Join this cluster to the hub, report its GPUs, and run what the hub assigns it."""
    # Imported on use, deliberately: `fleetplane --help` registers this command and must not
    # pay for the agent's imports.
    from .agent import load_options, run_agent

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(logging.WARNING)  # kopf is chatty at INFO about every watch
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        options = load_options(
            hub=hub,
            cluster_name=cluster_name,
            join_token=join_token,
            backend=backend.value,
            kubeconfig=kubeconfig,
            profile=profile,
            config=config,
            state_secret=state_secret,
            state_file=state_file,
            heartbeat_seconds=heartbeat_seconds,
            hub_verify=False if insecure_hub else (hub_ca or True),
            metrics_port=metrics_port,
            metrics_address=metrics_address,
        )
        run_agent(options)
    except JoinRefused as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(3) from e
    except PermanentError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


def main() -> None:
    app = typer.Typer(add_completion=False)
    app.command()(agent_command)
    app(sys.argv[1:], prog_name="fleetplane-agent")
