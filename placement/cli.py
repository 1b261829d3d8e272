"""The what-if CLI: ``fleetplane place -f fleet.yaml -f workloads.yaml [-o table|json|yaml]``.

Reads the same kube-style manifests the hub stores (Cluster with status, Dataset, Topology,
Workload), places the workloads with the engine — no hub, no database — and prints the
decisions with their explanations; with Queue objects it admits first and prints the
admission decisions (docs/queues.md). :func:`place` is the plain core (returns the text);
:func:`place_command` is the typer command the hub CLI registers as ``fleetplane place``.
``python -m placement.cli -f a.yaml -f b.yaml`` runs it standalone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
import yaml

from placement.decision import Decision
from placement.engine import Engine
from placement.errors import PlacementInputError
from placement.manifests import inputs_from_manifests, load_documents, parse_objects
from placement.profiles import PROFILES
from placement.queueing import whatif

OUTPUTS = ("table", "json", "yaml")
#: Rows of per-cluster explanation the table shows per workload (JSON/YAML show all).
TABLE_CLUSTER_ROWS = 10


def report(decisions: Sequence[Decision], profile: str, limit: int | None = None) -> dict[str, Any]:
    """The JSON/YAML document: a PlacementReport holding every decision's ``to_dict()``."""
    placed = sum(d.placed for d in decisions)
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "PlacementReport",
        "profile": profile,
        "summary": {"workloads": len(decisions), "placed": placed, "pending": len(decisions) - placed},
        "decisions": [d.to_dict(limit) for d in decisions],
    }


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)).rstrip() for r in rows]


def _placement_text(d: Decision) -> str:
    if not d.placed:
        return "-"
    return ", ".join(
        f"{x.cluster}: {x.replicas}× {x.capacity_type} {x.gpu_model}" if x.pool else f"{x.cluster}: {x.replicas}×"
        for x in d.assignments
    )


def render_table(decisions: Sequence[Decision], limit: int | None = TABLE_CLUSTER_ROWS) -> str:
    """Decisions first, then per workload its clusters: score breakdown or why filtered."""
    rows = [["WORKLOAD", "PRIORITY", "PHASE", "PLACEMENT", "REASON"]]
    for d in decisions:
        rows.append(
            [
                d.workload.key,
                str(d.workload.priority),
                "Placed" if d.placed else "Pending",
                _placement_text(d),
                "" if d.placed else d.reason,
            ]
        )
    out = _columns(rows)
    for d in decisions:
        out += ["", f"{d.workload.key}: {d.reason}"]
        explain = d.cluster_explanations()
        shown = explain if limit is None else explain[:limit]
        rows = [["  RANK", "CLUSTER", "SCORE", "POOL", "TYPE", "WHY (raw × weight = contribution) / WHY NOT"]]
        for c in shown:
            if c["feasible"]:
                breakdown = ", ".join(
                    f"{p['name']} {p['score']:g}×{p['weight']:g}={p['contribution']:g}" for p in c["plugins"]
                )
                rows.append(
                    [
                        f"  {c['rank']}",
                        c["name"],
                        f"{c['score']:.1f}",
                        c["pool"] or "-",
                        c["capacityType"] or "-",
                        breakdown,
                    ]
                )
            else:
                rows.append(["  -", c["name"], "-", "-", "-", f"{c['filter']}: {c['detail']}"])
        out += _columns(rows)
        if len(shown) < len(explain):
            out.append(f"  … {len(explain) - len(shown)} more clusters (use -o json for all)")
    return "\n".join(out)


def place(files: Sequence[Path | str], output: str = "table", profile: str = "default") -> str:
    """Place the workloads found in ``files`` on the fleet found there; return the rendering."""
    if output not in OUTPUTS:
        raise PlacementInputError("Option", "--output", "", f'unknown output "{output}" (want {"|".join(OUTPUTS)})')
    found = parse_objects(load_documents(files))
    if found.queues:  # admission before placement (docs/queues.md)
        return whatif.render(whatif.admission_from_manifests(found, profile), output, profile)
    snapshot, workloads = inputs_from_manifests(found)
    decisions = Engine(profile).place_batch(snapshot, workloads)
    if output == "table":
        return render_table(decisions)
    doc = report(decisions, profile)
    if output == "json":
        return json.dumps(doc, indent=2)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def place_command(
    filename: list[Path] = typer.Option(
        ...,
        "-f",
        "--filename",
        help="Manifest file (Clusters, Datasets, Topology, Workloads, Queues, PriorityClasses); repeatable.",
    ),
    output: str = typer.Option("table", "-o", "--output", help="table, json or yaml."),
    profile: str = typer.Option("default", "--profile", help=f"Scoring profile: {', '.join(PROFILES)}."),
) -> None:
    """What-if placement: where would these workloads go on this fleet, and why?"""
    try:
        typer.echo(place(filename, output, profile))
    except PlacementInputError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=1) from None


def main() -> None:
    app = typer.Typer(add_completion=False)
    app.command()(place_command)
    app()


if __name__ == "__main__":
    main()
