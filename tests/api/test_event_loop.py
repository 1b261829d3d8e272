"""The event loop the hub's serving processes run on (FLEETPLANE_EVENT_LOOP): uvloop by default
(the hub extra installs it), Python's asyncio loop on request; both serve the same API, watches
included, in one process and with API workers plus a controller."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.conftest import start_hub

NS_PATH = "/api/v1/namespaces"


def _serves_writes_and_watches(hub) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def watch() -> None:
        with hub.client() as c, c.stream("GET", NS_PATH, params={"watch": "1", "timeoutSeconds": "20"}) as r:
            for line in r.iter_lines():
                if line:
                    event = json.loads(line)
                    seen.append(f"{event['type']} {event['object']['metadata']['name']}")
                    if "ADDED loop-check" in seen:
                        return

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    with hub.client() as c:
        for _ in range(50):  # the watch is open once the namespaces it starts with arrive
            if seen:
                break
            threading.Event().wait(0.1)
        r = c.post(NS_PATH, json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "loop-check"}})
        assert r.status_code == 201, r.text
        assert c.get(f"{NS_PATH}/loop-check").status_code == 200
    t.join(25)
    assert "ADDED loop-check" in seen, seen


@pytest.mark.parametrize(
    ("setting", "loop", "workers"),
    [(None, "uvloop", 1), ("asyncio", "asyncio", 1), ("uvloop", "uvloop", 2), ("asyncio", "asyncio", 2)],
)
def test_the_hub_serves_on_the_event_loop_it_is_given(  # type: ignore[no-untyped-def]
    setting: str | None, loop: str, workers: int, tmp_path: Path, fresh_database
) -> None:
    env = {"FLEETPLANE_EVENT_LOOP": setting} if setting else {}
    hub = start_hub(tmp_path / "hub", fresh_database(), workers=workers, **env)
    try:
        _serves_writes_and_watches(hub)
        log = hub.log_path.read_text()
        # One line per serving process: the API worker(s) and, with workers, the controller.
        assert log.count(f"event loop: {loop}") >= (1 if workers == 1 else workers + 1), log[-3000:]
        other = "asyncio" if loop == "uvloop" else "uvloop"
        assert f"event loop: {other}" not in log
    finally:
        hub.stop()


def test_an_unknown_event_loop_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from hub.settings import Settings

    monkeypatch.setenv("FLEETPLANE_EVENT_LOOP", "trio")
    with pytest.raises(ValidationError, match="event_loop"):
        Settings()
