"""The images the charts run, checked against the charts without building them (no container
engine here): deploy/hub/Containerfile and deploy/agent/Containerfile install this repository
with their extra, pinned by requirements/lock.txt, copy every folder the wheel is built from,
run as the uid the charts' securityContext expects, and start the commands the charts give.
The version a release bumps is one number: pyproject's version is each Chart.yaml's
appVersion and each chart's default image tag (docs/release.md, "Cutting a release").
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.packaging import helmrun
from tests.packaging.helmrun import AGENT_CHART, HUB_CHART, ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
HUB_VALUES = {"postgresql.external.secretName": "db", "tls.secretName": "tls"}
AGENT_VALUES = {"clusterName": "c", "joinToken": "t", "hub.url": "https://hub:8443", "rbac.namespaces[0]": "team-a"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile: comments dropped, continuations joined."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#")))
    return [
        (w.upper(), rest.strip()) for w, _, rest in (line.strip().partition(" ") for line in text.splitlines()) if w
    ]


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last:]


def env_of(steps: list[tuple[str, str]]) -> dict[str, str]:
    return dict(kv.split("=", 1) for op, args in steps if op == "ENV" for kv in shlex.split(args))


def pod_specs(objects: helmrun.Objects) -> dict[str, dict[str, Any]]:
    return {name: o["spec"]["template"]["spec"] for (kind, name), o in objects.items() if kind in ("Deployment", "Job")}


def containerfile(image: str) -> Path:
    return ROOT / "deploy" / image / "Containerfile"


@pytest.mark.parametrize("image,extra", [("hub", "hub"), ("agent", "agent")])
def test_the_image_installs_the_repository_with_its_extra_pinned_by_the_lock(image: str, extra: str) -> None:
    steps = instructions(containerfile(image))
    copied = {shlex.split(args)[0].rstrip("/") for op, args in steps if op == "COPY" and "--from" not in args}
    copied |= {p for op, args in steps if op == "COPY" and "--from" not in args for p in shlex.split(args)[:-1]}
    assert "requirements/lock.txt" in copied
    # Every folder setuptools searches for packages, so the wheel built in the image is the real one.
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    roots = {p for p in find.get("where", ["."]) if p != "."}
    # Top-level folders matching its include globs that hold Python (migrations/ has no
    # __init__.py: a namespace package, which the hub needs to create its tables).
    packages = {
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and any(p.match(g) for g in find["include"]) and any(p.glob("*.py"))
    }
    assert {"hub", "migrations", "fleetplane"} <= packages
    assert packages | roots <= copied, f"not copied into the image: {(packages | roots) - copied}"
    [install] = [args for op, args in steps if op == "RUN" and f".[{extra}]" in args]
    words = shlex.split(install)
    assert words[words.index("-c") + 1] == "requirements/lock.txt", install
    assert words[words.index("--build-constraint") + 1] == "requirements/lock.txt", install
    assert extra in PYPROJECT["project"]["optional-dependencies"]
    # The Python the lock was resolved for (the Makefile's `make lock`: --python-version 3.11).
    [base] = {args.split()[0] for op, args in steps if op == "FROM"}
    assert base.startswith("python:3.11"), base
    assert "--python-version 3.11" in (ROOT / "Makefile").read_text()


def test_the_hub_image_runs_what_the_hub_chart_runs_as_the_user_it_expects(tmp_path: Path) -> None:
    steps = final_stage(instructions(containerfile("hub")))
    objects = helmrun.render(HUB_CHART, "hub", "fleetplane", HUB_VALUES, home=tmp_path)
    pods = pod_specs(objects)
    assert set(pods) == {"fleetplane-hub", "fleetplane-hub-migrate", "fleetplane-hub-token-bootstrap"}
    [user] = [args for op, args in steps if op == "USER"]
    entrypoint = json.loads(next(args for op, args in steps if op == "ENTRYPOINT"))
    for name, pod in pods.items():
        ctx = pod["securityContext"]
        assert user == f"{ctx['runAsUser']}:{ctx['runAsGroup']}", name
        [c] = pod["containers"]
        assert c["image"] == f"ghcr.io/fleetplane/hub:{PYPROJECT['project']['version']}", name
        # `fleetplane ...` is the image's entry point; the bootstrap Job runs the image's Python,
        # which must import `hub` (the script does; the [hub] extra installs it into /usr/local).
        if c["command"][0] == "python":
            assert (HUB_CHART / "files" / "token-bootstrap.py").read_text().count("from hub.") >= 1
        else:
            assert c["command"][: len(entrypoint)] == entrypoint, name
    assert PYPROJECT["project"]["scripts"][entrypoint[0]] == "fleetplane.cli:main"
    # The data dir: the same path as the chart's, and writable by that user in a plain `podman run`.
    [hub] = pods["fleetplane-hub"]["containers"]
    data_dir = next(e["value"] for e in hub["env"] if e["name"] == "FLEETPLANE_DATA_DIR")
    assert env_of(steps)["FLEETPLANE_DATA_DIR"] == data_dir
    uid = user.split(":")[0]
    assert any(op == "RUN" and f"chown {uid}:" in args and data_dir in args for op, args in steps), steps
    # Its default command serves where the chart's Service and probes look.
    assert json.loads(next(args for op, args in steps if op == "CMD")) == ["up", *hub["args"]]


def test_the_agent_image_runs_what_the_agent_chart_runs_as_the_user_it_expects(tmp_path: Path) -> None:
    steps = final_stage(instructions(containerfile("agent")))
    objects = helmrun.render(AGENT_CHART, "fp", "fleetplane-system", AGENT_VALUES, home=tmp_path)
    [pod] = pod_specs(objects).values()
    [user] = [args for op, args in steps if op == "USER"]
    assert user.split(":")[0] == str(pod["securityContext"]["runAsUser"])
    [c] = pod["containers"]
    assert "command" not in c, "the chart passes args to the image's entry point"
    assert json.loads(next(args for op, args in steps if op == "ENTRYPOINT")) == ["python", "-m", "spoke_agent"]
    assert (ROOT / "spoke-agent" / "spoke_agent" / "__main__.py").exists()
    assert c["image"] == f"ghcr.io/fleetplane/agent:{PYPROJECT['project']['version']}"


@pytest.mark.parametrize("chart", [HUB_CHART, AGENT_CHART], ids=["hub", "agent"])
def test_a_chart_s_app_version_and_default_image_tag_are_the_package_version(chart: Path) -> None:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    version = PYPROJECT["project"]["version"]
    assert meta["appVersion"] == version, f"{chart.name}/Chart.yaml appVersion"
    assert yaml.safe_load((chart / "values.yaml").read_text())["image"]["tag"] == meta["appVersion"]
    # The build command the Containerfile documents tags the same version.
    image = "hub" if chart == HUB_CHART else "agent"
    assert f"ghcr.io/fleetplane/{image}:{version} ." in containerfile(image).read_text()
