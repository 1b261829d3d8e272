"""Limits against a real hub with small limits: failed authentication and joins are rate limited
per client address (429 Status with Retry-After), a slow-header or slow-body client is
disconnected within its timeout, connections beyond the cap get a 503 Status, watches per
subject are capped, and a watch's timeoutSeconds ends it on time — also from a future
resourceVersion while events flow.

Each test that spends a per-address budget connects from its own loopback address
(127.0.0.x), so the tests do not spend each other's budgets."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from hub.store.store import Store
from hub.store.tokens import create_token
from tests.conftest import start_hub
from tests.hubtest import HubProcess, wait_until, workload

NAMESPACES = "/api/v1/namespaces"
WORKLOADS = "/apis/fleetplane.io/v1alpha1/namespaces/{ns}/workloads"

LIMITS = {
    "FLEETPLANE_CONTROLLERS": "false",
    "FLEETPLANE_AUTH_FAILURE_BURST": "3",
    "FLEETPLANE_AUTH_FAILURE_PER_SECOND": "0.5",
    "FLEETPLANE_JOIN_BURST": "4",
    "FLEETPLANE_JOIN_PER_SECOND": "0.5",
    "FLEETPLANE_HEADER_TIMEOUT_SECONDS": "1.5",
    "FLEETPLANE_BODY_TIMEOUT_SECONDS": "2",
    "FLEETPLANE_MAX_CONNECTIONS": "12",
    "FLEETPLANE_MAX_WATCHES_PER_SUBJECT": "2",
}

_addresses = (f"127.0.0.{i}" for i in itertools.count(10))


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    h = start_hub(tmp_path_factory.mktemp("limited"), fresh_database(), **LIMITS)
    yield h
    h.stop()


def client_from(hub: HubProcess, address: str, token: str | None = None) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any 127.0.0.0/8 address is loopback)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=hub.http_url,
        headers=headers,
        timeout=30,
        transport=httpx.HTTPTransport(local_address=address),
    )


def assert_429(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == "TooManyRequests" and body["code"] == 429, body
    retry_after = int(r.headers["Retry-After"])
    assert retry_after >= 1 and body["details"]["retryAfterSeconds"] == retry_after
    return retry_after


def team_token(hub: HubProcess, team: str, namespace: str) -> str:
    """A team token minted by the store function `fleetplane token create` uses."""

    async def go() -> str:
        store = Store(hub.database_url or "", pool_size=1)
        try:
            return await create_token(store, "team", team, [namespace])
        finally:
            await store.close()

    return asyncio.run(go())


def raw_socket(hub: HubProcess) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", hub.http_port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def closed_by_peer(s: socket.socket, timeout: float) -> bool:
    """Wait up to `timeout` s for the peer to close (EOF or reset); True if it did."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


# ------------------------------------------------------------------ rate limits


def test_failed_authentication_is_limited_per_address_with_429_and_retry_after(limited: HubProcess) -> None:
    address = next(_addresses)
    with client_from(limited, address, limited.admin_token) as admin:
        assert admin.get(NAMESPACES).status_code == 200  # a valid token, now cached by the hub
        with client_from(limited, address, "fpt-guessed-token") as guesser:
            for _ in range(3):
                assert guesser.get(NAMESPACES).status_code == 401
            retry_after = assert_429(guesser.get(NAMESPACES))
            # no token at all guesses nothing: still a plain 401, not counted
            with client_from(limited, address) as anonymous:
                assert anonymous.get(NAMESPACES).status_code == 401
            # the limited address keeps working with the valid token the hub already knows,
            # and with a valid token it has never seen (users behind one NAT with a guesser)
            assert admin.get(NAMESPACES).status_code == 200
            with client_from(limited, address, team_token(limited, "nat-neighbour", "default")) as neighbour:
                assert neighbour.get(NAMESPACES).status_code == 200
            assert_429(guesser.get(NAMESPACES))  # while guesses stay refused
            # another address has its own budget
            with client_from(limited, next(_addresses), "fpt-guessed-token") as elsewhere:
                assert elsewhere.get(NAMESPACES).status_code == 401
            time.sleep(retry_after + 0.1)
            assert guesser.get(NAMESPACES).status_code == 401, "the budget refills"


def test_the_join_endpoint_is_limited_per_address_and_failed_joins_count_as_failed_auth(
    limited: HubProcess,
) -> None:
    address = next(_addresses)
    body = {"joinToken": "fpj-guessed", "clusterName": "nowhere"}
    with client_from(limited, address) as c:
        codes = [c.post("/v1/clusters/join", json=body).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        assert_429(c.post("/v1/clusters/join", json=body))  # the failed-auth budget (3) is spent
    with client_from(limited, next(_addresses)) as c:
        for _ in range(4):  # malformed joins are not failed auth, but they are join requests
            assert c.post("/v1/clusters/join", content=b"{}").status_code == 400
        assert_429(c.post("/v1/clusters/join", json=body))  # the join budget (4) is spent


def test_a_join_body_over_its_cap_is_refused_with_413_even_when_chunked(limited: HubProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"joinToken": "'
        for _ in range(40):
            yield b"x" * 1024
        yield b'", "clusterName": "big"}'

    with client_from(limited, next(_addresses)) as c:
        r = c.post("/v1/clusters/join", content=chunks())  # no Content-Length: chunked
        assert r.status_code == 413, r.text
        assert r.json()["kind"] == "Status" and r.json()["reason"] == "RequestEntityTooLarge"


# ------------------------------------------------------------------ slow clients, connection cap


def trickle(s: socket.socket, data: bytes) -> float | None:
    """Send `data` one byte every 0.25 s; when the hub closed the connection, or None."""
    for byte in data:
        try:
            s.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic()
        if closed_by_peer(s, 0.25):
            return time.monotonic()
    return None


def test_a_client_sending_headers_one_byte_at_a_time_is_disconnected_within_the_header_timeout(
    limited: HubProcess,
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Slow: " + b"a" * 200
    with raw_socket(limited) as s:
        started = time.monotonic()
        closed_at = trickle(s, request)
    assert closed_at is not None, "a slow-header client was never disconnected"
    assert 1.4 <= closed_at - started <= 1.5 + 1.5, f"disconnected after {closed_at - started:.1f}s (timeout 1.5 s)"


def test_a_client_that_connects_and_sends_nothing_is_disconnected(limited: HubProcess) -> None:
    with raw_socket(limited) as s:
        started = time.monotonic()
        assert closed_by_peer(s, 5), "a silent connection was held open"
        assert time.monotonic() - started <= 1.5 + 1.5


def test_a_client_sending_its_body_one_byte_at_a_time_is_disconnected_within_the_body_timeout(
    limited: HubProcess,
) -> None:
    head = (
        f"POST {NAMESPACES} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {limited.admin_token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    ).encode()
    with raw_socket(limited) as s:
        s.sendall(head)
        started = time.monotonic()
        closed_at = trickle(s, b" " * 100)
    assert closed_at is not None, "a slow-body client was never disconnected"
    assert 1.9 <= closed_at - started <= 2 + 1.5, f"disconnected after {closed_at - started:.1f}s (timeout 2 s)"


def test_a_kept_alive_connection_serves_request_after_request_past_the_header_timeout(
    limited: HubProcess,
) -> None:
    # The header timer restarts with each request: it does not count from the connection's
    # start (4 requests 0.6 s apart on ONE socket outlive the 1.5 s header timeout).
    with raw_socket(limited) as s:
        s.settimeout(5)
        for _ in range(4):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
            answer = b""
            while not answer.endswith(b"ok"):
                chunk = s.recv(4096)
                assert chunk, "the hub closed a kept-alive connection that was sending whole requests"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer
            time.sleep(0.6)


def test_connections_beyond_the_cap_get_a_503_status_with_retry_after(limited: HubProcess) -> None:
    held = [raw_socket(limited) for _ in range(12)]
    try:
        time.sleep(0.2)
        with raw_socket(limited) as extra:
            extra.settimeout(5)
            answer = b""
            while chunk := extra.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503"), answer
        assert b"Retry-After: 1" in head
        status = json.loads(body)
        assert status["kind"] == "Status" and status["code"] == 503 and "connections" in status["message"]
    finally:
        for s in held:
            s.close()
    wait_until(lambda: httpx.get(limited.http_url + "/healthz").status_code == 200, 10, "the hub serves again")


# ------------------------------------------------------------------ watches


def _open_watch(hub: HubProcess, token: str, path: str, results: list[int], stop: threading.Event) -> None:
    with hub.client(token) as c, c.stream("GET", path, params={"watch": "true"}, timeout=None) as r:
        results.append(r.status_code)
        if r.status_code == 200:
            stop.wait(30)


def test_watches_per_subject_are_capped_with_429_and_a_closed_watch_frees_its_slot(limited: HubProcess) -> None:
    team = team_token(limited, "watchers", "team-w")
    path = WORKLOADS.format(ns="team-w")
    stop, results = threading.Event(), list[int]()
    threads = [threading.Thread(target=_open_watch, args=(limited, team, path, results, stop)) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(results) == 2, 20, "two watches are open")
        assert results == [200, 200]
        with limited.client(team) as c:
            r = c.get(path, params={"watch": "true"})
            assert_429(r)
            assert "watches" in r.json()["message"]
        with limited.client() as admin, admin.stream("GET", path, params={"watch": "true", "timeoutSeconds": "1"}) as r:
            assert r.status_code == 200, "the cap is per subject: the admin may still watch"
    finally:
        stop.set()
        for t in threads:
            t.join(10)

    def watch_again() -> bool:
        with limited.client(team) as c, c.stream("GET", path, params={"watch": "true", "timeoutSeconds": "1"}) as r:
            return r.status_code == 200

    wait_until(watch_again, 10, "a closed watch frees its slot")


def test_a_watch_from_a_future_resource_version_ends_at_its_timeout_while_events_flow(limited: HubProcess) -> None:
    with limited.client() as admin:
        assert admin.post(NAMESPACES, json={"metadata": {"name": "busy"}}).status_code == 201
        rv = int(admin.get(NAMESPACES).json()["metadata"]["resourceVersion"])
    stop = threading.Event()

    def write_continuously() -> None:
        # Events of the watched resource more often than the timeout: each one the watch skips
        # (they are all below its resourceVersion) used to restart its wait.
        with limited.client() as c:
            for i in itertools.count():
                if stop.is_set():
                    return
                c.post(WORKLOADS.format(ns="busy"), json=workload(f"w{i}", namespace="busy"))
                time.sleep(0.1)

    writer = threading.Thread(target=write_continuously)
    writer.start()
    try:
        started = time.monotonic()
        with (
            limited.client() as c,
            c.stream(
                "GET",
                WORKLOADS.format(ns="busy"),
                params={"watch": "true", "resourceVersion": str(rv + 1_000_000), "timeoutSeconds": "2"},
                timeout=30,
            ) as r,
        ):
            assert r.status_code == 200
            lines = [line for line in r.iter_lines() if line]
        took = time.monotonic() - started
    finally:
        stop.set()
        writer.join(10)
    assert lines == [], "every event is below the watch's resourceVersion"
    assert 1.9 <= took <= 2 + 1.5, f"the watch ended after {took:.1f}s (timeoutSeconds=2)"
