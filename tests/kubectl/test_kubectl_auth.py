"""`kubectl auth whoami` and `kubectl auth can-i` (the real binary) for admin, team and agent
kubeconfigs: the hub answers from the same access rules it enforces, so "yes" must mean the
request goes through and "no" that it is refused."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml

from tests.hubtest import HubProcess, Kubectl


def join(hub: HubProcess, cluster: str) -> str:
    """An agent credential, through the join flow an agent uses."""
    jt = hub.cli("cluster", "join-token", "create", cluster)
    with httpx.Client(base_url=hub.http_url) as c:
        r = c.post("/v1/clusters/join", json={"joinToken": jt, "clusterName": cluster})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def kubeconfig_with_token(hub: HubProcess, token: str, path: Path) -> Path:
    cfg = yaml.safe_load(hub.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def admin(kubectl: Kubectl) -> Kubectl:
    kubectl("create", "namespace", "team-a")
    kubectl("create", "namespace", "team-b")
    return kubectl


@pytest.fixture(scope="module")
def team(hub: HubProcess, admin: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    _, kc = hub.team("alpha", "team-a")
    return Kubectl(kc, tmp_path_factory.mktemp("kc-alpha"))


@pytest.fixture(scope="module")
def agent(hub: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    d = tmp_path_factory.mktemp("kc-east")
    return Kubectl(kubeconfig_with_token(hub, join(hub, "east"), d / "kubeconfig"), d)


def can_i(k: Kubectl, *args: str) -> str:
    """kubectl's answer: "yes" (exit 0) or "no" (exit 1), whatever reason follows."""
    out = k.run("auth", "can-i", *args, check=False)
    assert out.returncode in (0, 1), out.stderr
    answer = out.stdout.strip().split()[0] if out.stdout.strip() else ""
    assert answer == ("yes" if out.returncode == 0 else "no"), (out.stdout, out.stderr)
    return answer


def whoami(k: Kubectl) -> dict[str, str]:
    """kubectl's ATTRIBUTE / VALUE table (columns are separated by two or more spaces)."""
    rows = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in k("auth", "whoami").splitlines()[1:]]
    return {row[0]: row[1] for row in rows if len(row) == 2}


def test_whoami_names_the_admin_the_team_and_the_agent(admin: Kubectl, team: Kubectl, agent: Kubectl) -> None:
    assert whoami(admin)["Username"] == "fleetplane:admin:admin"
    me = whoami(team)
    assert me["Username"] == "fleetplane:team:alpha"
    assert "fleetplane:teams" in me["Groups"]
    assert me["Extra: fleetplane.io/namespaces"] == "[team-a]"
    assert whoami(agent)["Username"] == "fleetplane:agent:east"


def test_whoami_json_is_a_self_subject_review(team: Kubectl) -> None:
    review = team.json("auth", "whoami")
    assert review["kind"] == "SelfSubjectReview" and review["apiVersion"] == "authentication.k8s.io/v1"
    assert review["status"]["userInfo"]["groups"] == ["fleetplane:teams", "system:authenticated"]


def test_can_i_answers_the_admin(admin: Kubectl) -> None:
    assert can_i(admin, "create", "workloads", "-n", "team-b") == "yes"
    assert can_i(admin, "delete", "clusters") == "yes"
    assert can_i(admin, "patch", "clusters", "--subresource", "status") == "yes"
    assert can_i(admin, "patch", "workloads", "-n", "team-a", "--subresource", "status") == "no", (
        "only the hub's controllers write a Workload's status"
    )


def test_can_i_answers_the_team_in_and_outside_its_namespace(team: Kubectl) -> None:
    assert can_i(team, "create", "workloads") == "yes", "the kubeconfig's namespace is team-a"
    assert can_i(team, "delete", "datasets", "-n", "team-a") == "yes"
    assert can_i(team, "get", "workloads", "-n", "team-b") == "no"
    assert can_i(team, "patch", "workloads", "--subresource", "status") == "no"
    assert can_i(team, "list", "clusters") == "yes"
    assert can_i(team, "patch", "clusters") == "no"
    assert can_i(team, "create", "assignments") == "no"
    assert can_i(team, "delete", "assignments") == "yes"
    assert can_i(team, "get", "namespaces/team-a") == "yes"
    assert can_i(team, "get", "namespaces/team-b") == "no"
    assert can_i(team, "create", "namespaces") == "no"


def test_can_i_answers_the_agent(agent: Kubectl) -> None:
    assert can_i(agent, "patch", "clusters/east", "--subresource", "status") == "yes"
    assert can_i(agent, "patch", "clusters/west", "--subresource", "status") == "no"
    assert can_i(agent, "watch", "assignments", "--all-namespaces") == "yes"
    assert can_i(agent, "update", "assignments", "-n", "team-a", "--subresource", "status") == "yes"
    assert can_i(agent, "create", "assignments", "-n", "team-a") == "no"
    assert can_i(agent, "get", "workloads", "-n", "team-a") == "no"
    assert can_i(agent, "delete", "clusters/east") == "no"


def test_can_i_agrees_with_what_the_api_then_does(team: Kubectl) -> None:
    """A "no" for a team's status write is the 403 the same write gets; a "yes" goes through."""
    assert can_i(team, "create", "workloads") == "yes"
    team(
        "create",
        "-f",
        "-",
        input=yaml.safe_dump(
            {
                "apiVersion": "fleetplane.io/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": "agree"},
                "spec": {"manifests": [{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "agree"}}]},
            }
        ),
    )
    assert can_i(team, "patch", "workloads/agree", "--subresource", "status") == "no"
    err = team.fails(
        "patch",
        "workload",
        "agree",
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        '{"status":{"phase":"Succeeded"}}',
    )
    assert "Forbidden" in err and "workloads/status" in err


def test_can_i_list_shows_the_teams_rules(team: Kubectl) -> None:
    out = team("auth", "can-i", "--list")
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "workloads.fleetplane.io" in rows and "create" in rows["workloads.fleetplane.io"]
    assert "[get]" in rows["workloads.fleetplane.io/status"].replace(" ", "")
    assert "selfsubjectaccessreviews.authorization.k8s.io" in rows
