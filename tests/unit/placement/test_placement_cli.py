"""The what-if CLI on the example manifests in examples/whatif/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from placement import PlacementInputError
from placement.cli import place, place_command

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = [ROOT / "examples/whatif/fleet.yaml", ROOT / "examples/whatif/workloads.yaml"]


def decisions_by_name(doc: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {d["workload"]: d for d in doc["decisions"]}


def test_json_output_places_the_examples_where_the_fleet_comment_says() -> None:
    doc = json.loads(place(EXAMPLES, "json"))
    assert doc["kind"] == "PlacementReport"
    by = decisions_by_name(doc)
    # Non-preemptible H100 gang next to its data: the idle reserved H100s.
    pretrain = by["ml/llm-pretrain"]["placements"]
    assert [(p["cluster"], p["capacityType"], p["replicas"]) for p in pretrain] == [("east-reserved", "reserved", 2)]
    # Spot-preferred fine-tune: spot A100.
    assert by["ml/finetune"]["placements"][0]["capacityType"] == "spot"
    # Divisible embedding job: at most 2 clusters, all 10 replicas.
    embed = by["ml/batch-embed"]["placements"]
    assert len(embed) <= 2 and sum(p["replicas"] for p in embed) == 10
    # The 4 × 8 H100 gang does not fit anywhere; the fragmented cluster says why.
    big = by["ml/big-gang"]
    assert not big["placed"] and big["reason"].startswith("0/5 clusters: ")
    frag = next(c for c in big["clusters"] if c["name"] == "east-fragmented")
    assert (frag["filter"], frag["reason"]) == ("gpu-fit", "no node with 8 free H100")
    assert doc["summary"] == {"workloads": 4, "placed": 3, "pending": 1}


def test_yaml_output_is_the_same_document_as_json() -> None:
    assert yaml.safe_load(place(EXAMPLES, "yaml")) == json.loads(place(EXAMPLES, "json"))


def test_table_output_lists_each_workload_and_its_cluster_breakdown() -> None:
    text = place(EXAMPLES)
    lines = text.splitlines()
    assert lines[0].split() == ["WORKLOAD", "PRIORITY", "PHASE", "PLACEMENT", "REASON"]
    assert any(line.startswith("ml/llm-pretrain") and "east-reserved: 2× reserved H100" in line for line in lines)
    assert "cost 100×3=300" in text  # reserved capacity's arithmetic is shown
    assert "health: cluster is NotReady (HeartbeatLost)" in text


def test_the_typer_command_reports_bad_input_as_an_error_with_exit_code_1(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(place_command)
    bad = tmp_path / "w.yaml"
    bad.write_text(
        "apiVersion: fleetplane.io/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec: {gpu: {count: -1}}\n"
    )
    result = CliRunner().invoke(app, ["-f", str(bad)])
    assert result.exit_code == 1
    assert 'Workload "x": spec' in result.output
    ok = CliRunner().invoke(app, ["-f", str(EXAMPLES[0]), "-f", str(EXAMPLES[1]), "-o", "json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["summary"]["placed"] == 3


def test_an_unknown_output_format_is_rejected() -> None:
    with pytest.raises(PlacementInputError):
        place(EXAMPLES, "xml")


def test_python_dash_m_placement_cli_runs_standalone() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "placement.cli", "-f", str(EXAMPLES[0]), "-f", str(EXAMPLES[1]), "-o", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout)["summary"]["workloads"] == 4
