"""The release artefact works on its own: the wheel `python -m build` makes, installed with the
`[hub]` extra into a clean venv (no system site packages, nothing from this checkout) at the
locked versions (requirements/lock.txt), runs the hub, serves the dashboard, answers
`kubectl version`, and plans with `fleetplane place`.

What only this test sees, since the development venv is an editable install of the whole tree:
files the wheel lacks (the dashboard's modules, the Alembic migrations), a module the `[hub]`
extra does not pull in, a dependency missing from the lock, and the version the install reports.
Release steps: docs/release.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hubtest import HubProcess, free_port, wait_until
from tests.packaging.test_agent_install import ROOT, _ignore, _run

LOCK = ROOT / "requirements" / "lock.txt"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
WHATIF = [ROOT / "examples" / "whatif" / "fleet.yaml", ROOT / "examples" / "whatif" / "workloads.yaml"]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    """requirements/lock.txt as {canonical name: version}."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==(\S+)", line)
        if m:
            pins[_canonical(m.group(1))] = m.group(2)
    return pins


@dataclass
class Install:
    root: Path
    wheel: Path
    venv: Path
    work: Path  # the working directory of every command: outside the checkout

    @property
    def static(self) -> Path:
        """The dashboard's files in the copy the wheel was built from (the checkout may change meanwhile)."""
        return self.root / "src" / "hub" / "web" / "ui" / "static"

    @property
    def migrations(self) -> Path:
        return self.root / "src" / "migrations"

    @property
    def fleetplane(self) -> Path:
        return self.venv / "bin" / "fleetplane"


@pytest.fixture(scope="module")
def install() -> Iterator[Install]:
    # Not under pytest's tmp dir (0700, root only): embedded Postgres runs as its own user and
    # executes its binaries from the venv's site-packages.
    root = Path(tempfile.mkdtemp(prefix="fp-wheel-"))
    root.chmod(0o755)
    try:
        src, dist, venv, work = root / "src", root / "dist", root / "venv", root / "work"
        shutil.copytree(ROOT, src, ignore=_ignore)  # building in place would write build/ into the checkout
        work.mkdir()
        # The build backend at its locked version too (pip reads PIP_CONSTRAINT in build's isolated env).
        build = subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=work,
            env=dict(os.environ, PIP_CONSTRAINT=str(LOCK)),
        )
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
        wheels = list(dist.glob("*.whl"))
        assert [w.name for w in wheels] == [f"fleetplane-{VERSION}-py3-none-any.whl"], wheels

        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        pip = _run(work, venv / "bin" / "pip", "install", "--quiet", "-c", LOCK, f"{wheels[0]}[hub]", timeout=540)
        assert pip.returncode == 0, pip.stdout + pip.stderr
        yield Install(root, wheels[0], venv, work)
    finally:
        _stop_postmaster(root / "hub" / "postgres")  # left running only by a hub that was killed
        shutil.rmtree(root, ignore_errors=True)


def _stop_postmaster(pgdata: Path) -> None:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # Postgres's fast shutdown
    except (OSError, ValueError, IndexError):
        return
    wait_until(lambda: not (pgdata / "postmaster.pid").exists(), 30, "embedded Postgres stopped")


def test_the_wheel_carries_the_dashboard_and_the_migrations(install: Install) -> None:
    names = set(zipfile.ZipFile(install.wheel).namelist())
    wanted = {f"hub/web/ui/static/{p.name}" for p in install.static.iterdir() if p.is_file()}
    wanted |= {f"migrations/{p.relative_to(install.migrations)}" for p in install.migrations.rglob("*.py")}
    assert wanted - names == set(), "files of the source tree missing from the wheel"


def test_the_install_is_the_wheel_in_a_clean_venv_at_the_locked_versions(install: Install) -> None:
    where = _run(install.work, install.venv / "bin" / "python", "-c", "import hub, placement; print(hub.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(install.venv), f"{where.stdout} is not the installed copy"
    # No system or development site packages: the test tools are not importable.
    for absent in ("pytest", "kubernetes"):
        imported = _run(install.work, install.venv / "bin" / "python", "-c", f"import {absent}")
        assert "ModuleNotFoundError" in imported.stderr, f"{absent} is importable in the clean venv"

    listing = _run(install.work, install.venv / "bin" / "pip", "list", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    installed = {_canonical(d["name"]): d["version"] for d in json.loads(listing.stdout)}
    installed = {n: v for n, v in installed.items() if n not in {"fleetplane", "pip", "setuptools"}}  # venv's own seed
    locked = _locked()
    unlocked = {n: v for n, v in installed.items() if locked.get(n) != v}
    assert unlocked == {}, "installed by fleetplane[hub] but not at a locked version (run `make lock`)"


def test_fleetplane_version_is_the_package_version(install: Install) -> None:
    out = _run(install.work, install.fleetplane, "--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"fleetplane {VERSION}"
    # The agent reports spoke_agent.__version__ to the hub (its Cluster's status.agentVersion): its own
    # constant, which a release bumps with pyproject.toml's (docs/release.md).
    agent = _run(
        install.work, install.venv / "bin" / "python", "-c", "import spoke_agent; print(spoke_agent.__version__)"
    )
    assert agent.returncode == 0, agent.stderr
    assert agent.stdout.strip() == VERSION, "spoke_agent.__version__ differs from pyproject.toml's version"


def test_fleetplane_place_decides_as_the_source_tree_does(install: Install) -> None:
    files = [a for f in WHATIF for a in ("-f", str(f))]
    installed = _run(install.work, install.fleetplane, "place", *files, "-o", "json")
    assert installed.returncode == 0, installed.stderr
    report = json.loads(installed.stdout)
    assert report["kind"] == "PlacementReport"
    assert report["summary"]["placed"] >= 1 and len(report["decisions"]) == report["summary"]["workloads"]
    source = _run(install.work, sys.executable, "-m", "fleetplane", "place", *files, "-o", "json")
    assert source.returncode == 0, source.stderr
    assert report == json.loads(source.stdout), "the wheel's planner decides differently from the source tree's"


@pytest.mark.timeout(600)
def test_fleetplane_up_serves_the_api_dashboard_and_kubectl_then_stops_cleanly(install: Install) -> None:
    data = install.root / "hub"
    hub = HubProcess(data, None, free_port(), free_port(), program=[str(install.fleetplane)])
    hub.start(timeout=180)  # embedded Postgres: initdb on first start
    try:
        with hub.client() as client:
            assert client.get("/readyz").status_code == 200
            page = client.get("/ui/")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text[:200]
            for f in sorted(p for p in install.static.iterdir() if p.is_file()):
                served = client.get(f"/ui/static/{f.name}")
                assert served.status_code == 200, f"/ui/static/{f.name}: {served.status_code}"
                assert served.content == f.read_bytes(), f"/ui/static/{f.name} differs from the source tree"
            version = client.get("/version").json()

        assert version["gitVersion"].endswith(f"+fleetplane.{VERSION}"), version
        kubectl_env = dict(os.environ, KUBECONFIG=str(hub.kubeconfig), KUBECACHEDIR=str(install.root / "kubecache"))
        printed = {}
        for output in ("", "json"):
            args = ["version", "-o", output] if output else ["version"]
            kubectl = subprocess.run(["kubectl", *args], env=kubectl_env, capture_output=True, text=True, timeout=60)
            assert kubectl.returncode == 0, kubectl.stderr
            assert kubectl.stderr == "", kubectl.stderr  # no skew warning, no version parse error
            printed[output] = kubectl.stdout
        assert f"Server Version: {version['gitVersion']}" in printed[""], printed[""]
        assert json.loads(printed["json"])["serverVersion"] == version
    except BaseException:
        hub.stop(kill=True)
        raise

    assert hub.proc is not None
    hub.stop()  # SIGTERM: the hub drains and stops its embedded Postgres
    assert hub.proc.returncode == 0, hub.log_tail()
    assert hub.processes() == {}
    wait_until(lambda: not (data / "postgres" / "postmaster.pid").exists(), 30, "embedded Postgres stopped")
