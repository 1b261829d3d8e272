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


# ---------------------------------------------------------------- with Queue objects: admission first

QUEUED = [
    ROOT / "examples/whatif/fleet.yaml",
    ROOT / "examples/whatif/queues.yaml",
    ROOT / "examples/whatif/workloads.yaml",
]


def test_with_queues_the_json_report_shows_admission_decisions_flavors_and_victims() -> None:
    doc = json.loads(place(QUEUED, "json"))
    assert doc["kind"] == "AdmissionReport"
    by = decisions_by_name(doc)
    # Urgent and on-demand only: research's 8 on-demand H100s are held by old-sweep (batch, 10).
    hotfix = by["ml/hotfix-train"]
    assert (hotfix["phase"], hotfix["flavor"], hotfix["victims"]) == ("Admitted", "H100 on-demand", ["ml/old-sweep"])
    assert hotfix["priority"] == 1000  # from its PriorityClass label
    assert doc["evictions"][0]["reason"] == "preempted by ml/hotfix-train (priority 1000 > 10) in queue research"
    # workloads.yaml names no queue: the ml namespace's default queue takes them, flavors in order.
    assert (by["ml/llm-pretrain"]["queue"], by["ml/llm-pretrain"]["flavor"]) == ("research", "H100 reserved")
    assert by["ml/finetune"]["flavor"] == "A100 spot"
    assert by["ml/finetune"]["placements"][0]["cluster"] == "west-spot"
    embed = by["ml/batch-embed"]
    assert embed["phase"] == "Waiting" and embed["position"] == 1
    assert "queue research: A100 spot 16/16 used, cohort has 0 to lend; needs 10, 0 available" in embed["reason"]
    assert "behind 1 higher-priority workload" in by["ml/big-gang"]["reason"]
    assert "StrictFIFO: behind the queue's head inference/summarize" in by["inference/tiny-probe"]["reason"]
    assert doc["summary"] == {"workloads": 9, "admitted": 5, "waiting": 4, "inadmissible": 0, "evicted": 1}
    research = next(q for q in doc["queues"] if q["name"] == "research")
    assert [(f["flavor"], f["used"], f["nominal"]) for f in research["flavors"]] == [
        ("H100 reserved", 16, 16),
        ("H100 on-demand", 8, 8),
        ("A100 spot", 16, 16),
    ]


def test_with_queues_the_yaml_report_is_the_same_document_as_json() -> None:
    assert yaml.safe_load(place(QUEUED, "yaml")) == json.loads(place(QUEUED, "json"))


def test_with_queues_the_table_lists_decisions_queue_usage_and_evictions() -> None:
    lines = place(QUEUED).splitlines()
    assert lines[0].split() == ["WORKLOAD", "QUEUE", "PRIORITY", "GPUS", "PHASE", "FLAVOR", "PLACEMENT", "REASON"]
    hotfix = next(line for line in lines if line.startswith("ml/hotfix-train"))
    assert "Admitted" in hotfix and "east-reserved: 1× on-demand H100" in hotfix and "evicts ml/old-sweep" in hotfix
    assert any(line.split()[:2] == ["QUEUE", "COHORT"] for line in lines)
    assert any(line.startswith("research ") and "H100 reserved" in line and "16/16" in line for line in lines)
    assert any(line.startswith("ml/old-sweep") and "preempted by ml/hotfix-train" in line for line in lines)


def test_a_bad_queue_is_reported_with_the_queue_and_field_and_exit_code_1(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(place_command)
    bad = tmp_path / "q.yaml"
    bad.write_text(
        "apiVersion: fleetplane.io/v1alpha1\nkind: Queue\nmetadata: {name: team-a}\n"
        "spec: {resourceGroups: [{flavors: [{gpuModel: H100, capacityType: spot, nominalQuota: 4, lendingLimit: 2}]}]}\n"
    )
    result = CliRunner().invoke(app, ["-f", str(EXAMPLES[0]), "-f", str(bad), "-f", str(EXAMPLES[1])])
    assert result.exit_code == 1
    assert 'Queue "team-a": spec.resourceGroups[0].flavors[0].lendingLimit: needs spec.cohort' in result.output
