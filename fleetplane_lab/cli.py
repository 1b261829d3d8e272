"""`fleetplane lab up|down|status`: the lab as a CLI (typer sub-app `lab_app`).

The lead registers it with `app.add_typer(lab_app, name="lab")`; until then
`python -m fleetplane_lab ...` runs the same commands.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fleetplane_lab.binaries import BinariesMissing
from fleetplane_lab.lab import DEFAULT_DIR, Lab, LabError, default_spokes
from fleetplane_lab.profiles import ProfileError
from fleetplane_lab.spoke import LabStartError

lab_app = typer.Typer(
    help="Multi-cluster lab: a hub plus real spoke control planes with fake GPU nodes.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)

DirOpt = typer.Option(DEFAULT_DIR, "--dir", help="Run dir holding the lab's state, kubeconfigs and logs.")


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


@lab_app.command()
def up(
    spokes: int = typer.Option(2, "--spokes", "-n", min=0, help="Number of spoke clusters."),
    dir: Path = DirOpt,
    backend: str = typer.Option(
        "local", help="local: real control planes, no Docker (default). kind: kind clusters on a Docker host."
    ),
    profile: list[str] = typer.Option(
        None,
        "--profile",
        "-p",
        help="GPU profile for every spoke (repeatable); "
        "default mixes h100-reserved, a100-spot, l4-ondemand across spokes.",
    ),
    hub: bool = typer.Option(True, "--hub/--no-hub", help="Also start the hub (fleetplane up) on embedded Postgres."),
    shared_etcd: bool = typer.Option(
        False, help="One etcd for all spokes (distinct key prefixes) instead of one each."
    ),
    foreground: bool = typer.Option(False, help="Stay in the foreground; Ctrl-C stops the lab."),
) -> None:
    """Start the hub and N spokes; print one kubeconfig per cluster."""
    lab = Lab(
        dir,
        spokes=default_spokes(spokes, profile or None),
        with_hub=hub,
        shared_etcd=shared_etcd,
        backend=backend,
        progress=lambda m: err.print(f"[dim]{m}[/dim]"),
    )
    try:
        lab.up()
    except (LabStartError, LabError, BinariesMissing, ProfileError) as e:
        err.print(f"[red]lab up failed:[/red] {e}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    t = Table(title=f"lab up in {lab.timings['up']:.1f}s ({lab.backend})")
    for col in ("cluster", "server", "kubeconfig", "nodes"):
        t.add_column(col)
    if lab.hub:
        t.add_row("hub", lab.hub.url, lab.hub.kubeconfig, "")
    for name, s in lab.spokes.items():
        t.add_row(name, s.server, s.kubeconfig, str(len(s.nodes)))
    console.print(t)
    # Plain lines too: tables truncate long paths in narrow terminals, and scripts grep these.
    for name, path in lab.kubeconfigs().items():
        print(f"kubeconfig {name}: {path}")
    first = next(iter(lab.spokes.values()), None)
    if first:
        console.print(f"try: kubectl --kubeconfig {first.kubeconfig} get nodes -L nvidia.com/gpu.product")
    console.print(f"stop: fleetplane lab down --dir {dir}")
    if foreground:

        def on_term(signum: int, frame: object) -> None:
            raise KeyboardInterrupt  # same clean shutdown as Ctrl-C

        signal.signal(signal.SIGTERM, on_term)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        _down(lab)


def _down(lab: Lab, grace: float = 10.0) -> None:
    rep = lab.down(grace=grace)
    console.print(
        f"stopped {len(rep.stopped)} processes" + (f" ({len(rep.killed)} needed SIGKILL)" if rep.killed else "")
    )
    if rep.busy_ports or rep.leftover_pids:
        err.print(f"[red]still busy ports {rep.busy_ports}, live pids {rep.leftover_pids}[/red]")
        raise typer.Exit(1)


@lab_app.command()
def down(dir: Path = DirOpt, grace: float = typer.Option(10.0, help="Seconds between SIGTERM and SIGKILL.")) -> None:
    """Stop everything `lab up` started in --dir (by recorded PID); check ports are freed."""
    lab = Lab.attach(dir)
    if not lab.state_path.exists():
        console.print(f"no lab running in {dir}")
        return
    _down(lab, grace)


@lab_app.command()
def status(dir: Path = DirOpt, as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show what the lab in --dir runs: processes, PIDs, RSS, ports, spokes."""
    st = Lab.attach(dir).status()
    if as_json:
        console.print_json(json.dumps(asdict(st)))
        return
    if not st.components and not st.spokes:
        console.print(f"no lab running in {dir}")
        return
    t = Table(title=f"lab in {dir} ({st.backend})")
    for col in ("component", "pid", "state", "rss", "ports", "log"):
        t.add_column(col, justify="right" if col in ("pid", "rss") else "left")
    for c in st.components:
        t.add_row(
            c.name,
            str(c.pid),
            "[green]running[/green]" if c.alive else "[red]exited[/red]",
            _mib(c.rss_bytes) if c.alive else "",
            ",".join(map(str, c.ports)),
            c.log,
        )
    console.print(t)
    s = Table(title="spokes")
    for col in ("spoke", "ready", "server", "nodes", "rss", "region", "profiles", "kubeconfig"):
        s.add_column(col)
    for name, d in st.spokes.items():
        s.add_row(
            name,
            "yes" if d["ready"] else "[red]no[/red]",
            d["server"],
            str(d["nodes"]),
            _mib(d["rss_bytes"]),
            d["region"] or "",
            ",".join(d["profiles"]),
            d["kubeconfig"],
        )
    console.print(s)
    if st.hub:
        console.print(f"hub: {st.hub['url']}  kubeconfig: {st.hub['kubeconfig']}")
