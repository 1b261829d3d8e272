"""`pip install 'fleetplane[agent]'` gives a working spoke agent without the hub server.

The agent runs on every spoke cluster: its image (deploy/agent/Containerfile installs
`.[agent]`) and anyone who runs `pip install 'fleetplane[agent]'` must get the `fleetplane agent`
command, the agent package and the wire types, and must not pull in the hub's server stack
(FastAPI, SQLAlchemy, uvicorn, Postgres...): that would bloat the image and its memory, and a
hub import sneaking into the agent would only show up here, since the development venv has
everything installed. So this test installs the extra for real, from a copy of the repository,
into a fresh venv, and runs the installed command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Not copied: local state, caches and build output. Building from the repository itself would
# write build/ and fleetplane.egg-info/ into it, so the install builds from a copy.
_SKIP_AT_ROOT = {".venv", ".git", ".fleetplane", "tmp", "build", "dist"}
_SKIP_ANYWHERE = {"__pycache__", ".mypy_cache", ".pytest_cache", ".hypothesis", ".import_linter_cache", ".ruff_cache"}


def _ignore(directory: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in _SKIP_ANYWHERE or n.endswith((".egg-info", ".pyc"))}
    if Path(directory).resolve() == ROOT:
        skip |= _SKIP_AT_ROOT & set(names)
    return skip


def _run(cwd: Path, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run outside the repository (`python -c` puts the working directory on sys.path) and
    without the development venv's environment, so only what pip installed is importable."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


@pytest.mark.timeout(600)
def test_the_agent_extra_installs_without_the_hub_server_and_runs_its_cli(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=_ignore)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_ = venv / "bin"
    work = tmp_path / "work"
    work.mkdir()

    install = _run(work, bin_ / "pip", "install", "--quiet", f"{src}[agent]", timeout=540)
    assert install.returncode == 0, install.stdout + install.stderr

    help_ = _run(work, bin_ / "fleetplane", "agent", "--help")
    assert help_.returncode == 0, help_.stdout + help_.stderr
    assert "--hub" in help_.stdout and "--join-token" in help_.stdout, help_.stdout

    for server_module in ("fastapi", "sqlalchemy", "uvicorn"):
        imported = _run(work, bin_ / "python", "-c", f"import {server_module}")
        assert imported.returncode != 0, f"{server_module} is installed by fleetplane[agent]"
        assert "ModuleNotFoundError" in imported.stderr, imported.stderr

    agent = _run(
        work,
        bin_ / "python",
        "-c",
        "import spoke_agent.agent, fleetplane_types.v1alpha1; "
        "print(spoke_agent.agent.__file__); print(fleetplane_types.v1alpha1.__file__)",
    )
    assert agent.returncode == 0, agent.stderr
    for module_file in agent.stdout.split():
        assert Path(module_file).is_relative_to(venv), f"{module_file} is not the installed copy"

    up = _run(work, bin_ / "fleetplane", "up")
    assert up.returncode != 0, up.stdout + up.stderr
    assert "fleetplane[hub]" in up.stdout + up.stderr, up.stdout + up.stderr

    # The listing names the extra too (Rich markup once swallowed "[hub]" here).
    listing = _run(work, bin_ / "fleetplane", "--help")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "fleetplane[hub]" in listing.stdout, listing.stdout
