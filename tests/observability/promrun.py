"""The real Prometheus server (built from its Go module by deploy/local/build-prometheus.sh) as a
child process for the observability tests: a config, a scratch TSDB, a free port, and its HTTP
API (/api/v1/query, /api/v1/targets)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fleetplane_testing.ports import LOOPBACK, free_port
from fleetplane_testing.processes import stop_process
from fleetplane_testing.waiting import wait_until

PROMETHEUS_VERSION = "0.316.0"  # the Go module version; must match deploy/local/build-prometheus.sh


def prometheus_binary() -> Path:
    """Where deploy/local/build-prometheus.sh puts it: FLEETPLANE_PROMETHEUS wins; otherwise the
    cache (FLEETPLANE_CACHE, default ~/.cache/fleetplane), keyed by version."""
    explicit = os.environ.get("FLEETPLANE_PROMETHEUS")
    if explicit:
        return Path(explicit).expanduser()
    cache = Path(os.environ.get("FLEETPLANE_CACHE", "~/.cache/fleetplane")).expanduser()
    return cache / f"prometheus-v{PROMETHEUS_VERSION}" / "bin" / "prometheus"


def require_prometheus() -> Path:
    """The binary; a missing one skips the test on a developer's machine but fails it in CI (the
    environment variable CI set), where `make test` builds it first: CI must not pass by skipping."""
    binary = prometheus_binary()
    if not os.access(binary, os.X_OK):
        message = (
            f"prometheus v{PROMETHEUS_VERSION} not found at {binary}: run `make prometheus` "
            "(bash deploy/local/build-prometheus.sh, builds it from its Go module) or point "
            "FLEETPLANE_PROMETHEUS at a Prometheus 3 binary"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so this is not skipped: {message}", pytrace=False)
        pytest.skip(message)
    return binary


@dataclass
class Prometheus:
    binary: Path
    workdir: Path
    scrape_configs: list[dict[str, Any]]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def start(self) -> Prometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": self.scrape_configs,
        }
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child writes it for its whole life)
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {proc.returncode}:\n{self.log()}")
            return httpx.get(self.url + "/-/ready", timeout=2).status_code == 200

        wait_until("Prometheus is ready", ready, 60, 0.2, retry_on=(httpx.HTTPError,))
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def api(self, path: str, **params: str) -> Any:
        r = httpx.get(self.url + path, params=params, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body.get("status") == "success", f"{path} {params}: {r.status_code} {body}"
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant vector (a list of {metric, value}); [] when nothing matches yet."""
        data = self.api("/api/v1/query", query=promql)
        assert data["resultType"] == "vector", f"{promql}: {data['resultType']}"
        return list(data["result"])

    def scalar(self, promql: str) -> float | None:
        """The value of a query that yields one series, None while it yields none."""
        result = self.query(promql)
        if not result:
            return None
        assert len(result) == 1, f"{promql}: expected one series, got {result}"
        return float(result[0]["value"][1])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("/api/v1/targets")["activeTargets"])
