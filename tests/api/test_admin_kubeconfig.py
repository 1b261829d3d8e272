"""The local admin kubeconfig `fleetplane up` writes, and the setting that turns it off for hub
replicas whose data directory dies with them (the Helm chart's emptyDir): with it off a start
mints no admin token at all, so restarts do not pile up valid, never used admin credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.store.database import sqlalchemy_url
from tests.conftest import start_hub


def admin_tokens(url: str) -> int:
    engine = sa.create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM tokens WHERE kind = 'admin'")).scalar_one())
    finally:
        engine.dispose()


def test_a_hub_without_the_local_admin_kubeconfig_mints_no_admin_token(tmp_path: Path, fresh_database) -> None:  # type: ignore[no-untyped-def]
    url = fresh_database()
    for start in range(2):
        hub = start_hub(tmp_path / f"pod-{start}", url, FLEETPLANE_ADMIN_KUBECONFIG="false")
        try:
            assert not (hub.data_dir / "admin.token").exists()
            assert not hub.kubeconfig.exists()
            assert "FLEETPLANE_ADMIN_KUBECONFIG=false" in hub.log_tail()
            assert admin_tokens(url) == 0
        finally:
            hub.stop()

    # The way in for such a hub: an admin token minted on purpose, with a kubeconfig.
    hub = start_hub(tmp_path / "pod-2", url, FLEETPLANE_ADMIN_KUBECONFIG="false")
    try:
        kubeconfig = tmp_path / "ops.kubeconfig"
        token = hub.cli("token", "create-admin", "ops", "--kubeconfig", str(kubeconfig)).splitlines()[-1]
        assert token in kubeconfig.read_text()
        with hub.client(token) as c:
            r = c.get("/apis/fleetplane.io/v1alpha1/clusters")
            assert r.status_code == 200, r.text
        assert "admin" in hub.cli("token", "list") and "ops" in hub.cli("token", "list")
    finally:
        hub.stop()
    assert admin_tokens(url) == 1


def test_the_default_hub_reuses_its_admin_token_across_restarts(tmp_path: Path, fresh_database) -> None:  # type: ignore[no-untyped-def]
    url = fresh_database()
    tokens = []
    for _ in range(2):
        hub = start_hub(tmp_path / "hub", url)
        try:
            tokens.append(hub.admin_token)
            assert hub.kubeconfig.exists()
        finally:
            hub.stop()
    assert tokens[0] == tokens[1]
    assert admin_tokens(url) == 1


@pytest.mark.parametrize("value", ["nope", "2"])
def test_a_bad_value_is_refused_by_name(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from hub.settings import Settings

    monkeypatch.setenv("FLEETPLANE_ADMIN_KUBECONFIG", value)
    with pytest.raises(ValidationError, match="admin_kubeconfig"):
        Settings()
