"""`python -m spoke_agent` (the image's entry point) takes the same options as `fleetplane agent`,
and loads only what the agent uses: the footprint numbers in docs/agent.md depend on it."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from spoke_agent.cli import agent_command
from spoke_agent.settings import AgentConfig, ConfigError
from spoke_agent.standalone import parse

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'spoke-agent'}"}


def typer_kwargs(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """What typer (the `fleetplane agent` command) passes to agent_command for `argv`."""
    seen: dict[str, Any] = {}

    @functools.wraps(agent_command)  # the same options (typer reads them through __wrapped__)
    def capture(**kwargs: Any) -> None:
        seen.update(kwargs)

    app = typer.Typer()
    app.command()(capture)
    result = CliRunner().invoke(app, argv, env=env)
    assert result.exit_code == 0, result.output
    return seen


@pytest.mark.parametrize(
    "argv",
    [
        ["--hub", "https://hub:8443", "--cluster-name", "c1", "--join-token", "t"],
        ["--hub=https://hub:8443", "--backend", "simulated", "--profile", "p.yaml", "--heartbeat-seconds", "2.5"],
        ["--hub", "https://hub", "--insecure-skip-tls-verify", "--log-level", "WARNING", "--state-secret", "ns/s"],
    ],
)
def test_the_entry_point_passes_what_typer_passes(argv: list[str]) -> None:
    assert parse(argv) == typer_kwargs(argv)


def test_environment_variables_fill_options_that_are_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"FLEETPLANE_HUB": "https://from-env:8443", "FLEETPLANE_CLUSTER_NAME": "c9"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    kwargs = parse(["--cluster-name", "c1"])
    assert kwargs["hub"] == "https://from-env:8443" and kwargs["cluster_name"] == "c1"
    assert kwargs == typer_kwargs(["--cluster-name", "c1"], env)


def test_a_missing_hub_and_a_bad_config_are_refused_by_name(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "spoke_agent"],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV, "FLEETPLANE_HUB": ""},
        timeout=60,
    )
    assert run.returncode == 2 and "missing option --hub" in run.stderr, run.stderr
    config = tmp_path / "agent.yaml"
    config.write_text("delivery:\n  workers: 0\nhub:\n  requestTimeoutSeconds: 5\n")
    run = subprocess.run(
        [sys.executable, "-m", "spoke_agent", "--hub", "https://127.0.0.1:9", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert f"{config}: delivery.workers: must be at least 1 (got 0)" in run.stderr, run.stderr


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"hub": {"requestTimeoutSecs": 5}}, "hub.requestTimeoutSecs: unknown setting"),
        ({"lease": {"durationSeconds": "long"}}, "lease.durationSeconds: must be a number"),
        ({"lease": {"durationSeconds": 0}}, "lease.durationSeconds: must be greater than 0"),
        ({"delivery": {"allowedKinds": [{"group": "batch"}]}}, "delivery.allowedKinds[0].kind: is required"),
        ({"capacity": {"gpuResources": "nvidia.com/gpu"}}, "capacity.gpuResources: must be a list"),
    ],
)
def test_bad_settings_name_the_setting(data: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as e:
        AgentConfig.model_validate(data)
    assert where in str(e.value)


def test_settings_accept_camel_and_snake_case_and_keep_their_defaults() -> None:
    config = AgentConfig.model_validate({"capacity": {"heartbeat_seconds": 4}, "lease": {"durationSeconds": 9}})
    assert config.capacity.heartbeat_seconds == 4.0 and config.lease.duration_seconds == 9.0
    assert config.hub == AgentConfig().hub and config.delivery.workers == 4


def test_the_agent_process_loads_none_of_the_libraries_it_does_not_use() -> None:
    # What `python -m spoke_agent` imports for either backend, then the option parsing it does.
    code = (
        "import sys; sys.argv = ['spoke_agent', '--hub', 'https://hub']\n"
        "import spoke_agent.standalone as s, spoke_agent.agent, spoke_agent.backends.kubernetes, "
        "spoke_agent.backends.simulated\n"
        "s.parse(sys.argv[1:])\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **ENV}, timeout=60
    )
    assert run.returncode == 0, run.stderr
    loaded = set(run.stdout.split())
    assert {"kopf", "httpx", "spoke_agent"} <= loaded  # the check sees what the agent imports
    unused = {"pydantic", "pydantic_core", "kubernetes", "rich", "click", "pygments", "numpy", "networkx"}
    unused |= {"prometheus_client", "fastapi", "sqlalchemy"}
    assert loaded & unused == set()
