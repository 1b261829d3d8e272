"""The agent: join the hub, report capacity, deliver Assignments, report their status.

`Agent` is one cluster's agent as a coroutine (`await agent.run()`); many can share one event
loop (the simulated backend's scale tests run 1,000 in a process). `AgentThread` runs one in
a background thread for tests and the Python API; `run_agent` is the blocking entry point
the CLI calls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .backends import Backend
from .delivery import Delivery, now_rfc3339
from .errors import HubUnreachable, JoinRefused, PermanentError, TemporaryError
from .hub import HubClient
from .labels import BACKEND_LABEL
from .lease import LeaseClock, report_digest, timing_problem
from .settings import AgentConfig

log = logging.getLogger("fleetplane.agent")


@dataclass
class AgentOptions:
    """Everything one agent process needs (the CLI options, as a value)."""

    hub: str
    cluster_name: str | None = None
    join_token: str | None = None
    backend: str = "kubernetes"  # kubernetes | simulated
    kubeconfig: str | None = None
    profile: str | None = None
    config: AgentConfig = field(default_factory=AgentConfig)
    state_secret: str | None = None  # namespace/name on the spoke (kubernetes backend)
    state_file: str | None = None  # simulated backend: where to keep the credential
    heartbeat_seconds: float | None = None
    hub_verify: bool | str = True
    metrics_port: int | None = None  # serve /metrics there (spoke_agent.metrics); None: off
    metrics_address: str = "127.0.0.1"  # loopback unless asked: /metrics has no token

    def make_backend(self) -> Backend:
        # Backends are imported on use, deliberately: the kubernetes one pulls in kopf (and its
        # aiohttp stack, tens of MB of RSS) that a simulated agent never needs.
        if self.backend == "simulated":
            from .backends.simulated import Profile, SimulatedBackend

            if not self.profile:
                raise PermanentError("--backend simulated needs --profile FILE (node pools and job run times)")
            return SimulatedBackend(
                Profile.load(self.profile), state_file=self.state_file, cluster_name=self.cluster_name or "sim"
            )
        if self.backend == "kubernetes":
            from .backends.kubernetes import KubernetesBackend
            from .kubeconfig import resolve

            return KubernetesBackend(resolve(self.kubeconfig), self.config, state_secret=self.state_secret)
        raise PermanentError(f"unknown backend {self.backend!r}: use kubernetes or simulated")


class Agent:
    def __init__(self, options: AgentOptions, backend: Backend | None = None) -> None:
        self.options = options
        self.config = options.config
        if options.heartbeat_seconds is not None:
            self.config.capacity.heartbeat_seconds = options.heartbeat_seconds
        self.backend: Backend = backend or options.make_backend()
        self.cluster_name: str = options.cluster_name or ""
        self.hub = HubClient(options.hub, settings=self.config.hub, verify=options.hub_verify)
        self.delivery: Delivery | None = None
        self.ready = asyncio.Event()
        self._capacity_dirty = asyncio.Event()
        self._kubernetes_version: str | None = None
        self.last_report: dict[str, Any] | None = None
        self.reports = 0
        self.renewals = 0
        self.lease = LeaseClock(self.config.lease.duration_seconds)
        self.holder = f"{socket.gethostname()}/{os.getpid()}"
        self._reported_digest: str | None = None  # of the last status the hub accepted
        self._lease_changed = asyncio.Event()
        self._renew_now = asyncio.Event()  # the watch lost the hub: renew now, not at the next heartbeat
        self._ready_since = now_rfc3339()  # reset by run(); set here so the status can be built before
        self._timing_checked = False
        self.fenced_at: float | None = None  # monotonic time the agent fenced itself (None: not fenced)

    # ------------------------------------------------------------ join

    async def login(self) -> None:
        """Reuse the stored credential, or exchange the join token for one and store it."""
        state = await self.backend.load_state() or {}
        if not self.cluster_name:
            self.cluster_name = state.get("clusterName", "")
        if not self.cluster_name:
            raise PermanentError("no cluster name: pass --cluster-name (or store clusterName in the state Secret)")
        token = state.get("token") if state.get("clusterName", self.cluster_name) == self.cluster_name else None
        if token:
            await self.hub.set_token(token)
            try:
                await self.hub.get_cluster(self.cluster_name)
                log.info("cluster %s: reusing stored hub credential", self.cluster_name)
                return
            except JoinRefused:
                log.warning(
                    "cluster %s: stored credential refused by the hub; trying the join token", self.cluster_name
                )
        join_token = self.options.join_token or state.get("joinToken")
        if not join_token:
            raise JoinRefused(
                f"cluster {self.cluster_name}: no usable credential and no join token; create one on the hub with "
                f"`fleetplane cluster join-token create {self.cluster_name}` and pass --join-token"
            )
        try:
            token = await self.hub.join(join_token, self.cluster_name)
        except JoinRefused as e:
            raise JoinRefused(
                f"cluster {self.cluster_name}: the hub refused the join token (used already, expired or wrong); "
                f"create a new one with `fleetplane cluster join-token create {self.cluster_name}` ({e})"
            ) from e
        await self.backend.save_state(
            {"clusterName": self.cluster_name, "token": token, "hub": self.options.hub, "joinToken": ""}
        )
        await self.hub.set_token(token)
        log.info("cluster %s: joined the hub %s", self.cluster_name, self.options.hub)

    async def mark_backend(self) -> None:
        """Label the Cluster with its backend, so a simulated spoke is never mistaken for a real one."""
        name = self.backend.name
        try:
            await self.hub.patch_cluster(
                self.cluster_name, {"metadata": {"labels": {BACKEND_LABEL: name}}, "spec": {"backend": name}}
            )
        except PermanentError as e:
            if e.reason != "Forbidden":
                raise
            # Some hubs let an agent write only its Cluster's status; the status still says
            # which backend this is (Ready reason, agentVersion suffix), so carry on.
            log.warning(
                "cluster %s: hub does not let the agent set spec.backend/labels (%s); "
                "the backend is shown in status only",
                self.cluster_name,
                e,
            )

    # ------------------------------------------------------------ capacity reporting

    def capacity_changed(self) -> None:
        self._capacity_dirty.set()

    def cluster_status(self) -> dict[str, Any]:
        # The GPUs of copies stopped while fenced count as allocated until they are back: the hub
        # did not re-place them, and must not book those GPUs for another workload meanwhile.
        cap = self.backend.capacity(self.delivery.held_gpus() if self.delivery is not None else None)
        simulated = self.backend.name == "simulated"
        status: dict[str, Any] = {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "SimulatedAgentReporting" if simulated else "AgentReporting",
                    "message": "SIMULATED cluster (spoke agent simulated backend)"
                    if simulated
                    else "spoke agent is reporting",
                    "lastTransitionTime": self._ready_since,
                }
            ],
            "heartbeatTime": now_rfc3339(),
            "agentVersion": f"{__version__}{'-simulated' if simulated else ''}",
            "kubernetesVersion": self._kubernetes_version,
            **cap.to_status(self.config.capacity.report_nodes),
        }
        return status

    async def report_forever(self) -> None:
        settings = self.config.capacity
        failures = 0
        while True:
            try:
                await asyncio.wait_for(self._capacity_dirty.wait(), timeout=settings.heartbeat_seconds)
                await asyncio.sleep(settings.debounce_seconds)
            except TimeoutError:
                pass  # heartbeat
            self._capacity_dirty.clear()
            try:
                await self.report_if_changed()
                failures = 0
            except (TemporaryError, PermanentError) as e:
                if isinstance(e, JoinRefused):
                    raise
                failures += 1
                log.warning("cluster %s: capacity report failed (%s)", self.cluster_name, e)
                await asyncio.sleep(min(2**failures, settings.heartbeat_seconds))
                self._capacity_dirty.set()

    async def report_if_changed(self) -> bool:
        """Send the capacity report if it says something new (True if it was sent): with
        nothing new the lease carries liveness (renew_forever), and no Cluster is rewritten."""
        status = self.cluster_status()
        if report_digest(status) == self._reported_digest:
            return False
        await self.report(status)
        return True

    async def report(self, status: dict[str, Any]) -> None:
        """PATCH the Cluster's status (it carries heartbeatTime for readers, and counts as a
        renewal: the hub takes the later of the two)."""
        sent = time.monotonic()
        await self.hub.patch_cluster_status(self.cluster_name, status)
        self._reported_digest = report_digest(status)
        self.last_report = status
        self.reports += 1
        self._renewed(sent)

    # ------------------------------------------------------------ lease and self-fencing

    def _renewed(self, sent: float) -> None:
        self.lease.renewed(sent)
        self._lease_changed.set()

    async def renew_once(self) -> None:
        """Renew the lease once (raises TemporaryError/PermanentError when it fails); lift the
        fence if this agent had fenced itself."""
        sent = time.monotonic()
        # At most two heartbeats: the next renewal is due by then (self-fencing has its own timer,
        # so a hung request never delays the fence).
        timeout = min(self.config.hub.request_timeout_seconds, max(1.0, 2 * self.config.capacity.heartbeat_seconds))
        answer = await self.hub.renew_lease(
            self.cluster_name, self.holder, self.config.lease.duration_seconds, timeout=timeout
        )
        self.renewals += 1
        self._renewed(sent)
        self._check_timing(answer.get("clusterTimeoutSeconds"))
        if answer.get("clusterReady") is False:
            # The hub marked the cluster NotReady while it did not hear from us: say Ready again.
            self._reported_digest = None
            self._capacity_dirty.set()
        if self.delivery is not None and self.delivery.fenced:
            await self.delivery.unfence_self()
            log.warning(
                "cluster %s: lease renewed after %.1fs fenced; re-synced from the hub, resuming delivery",
                self.cluster_name,
                time.monotonic() - (self.fenced_at or sent),
            )
            self.fenced_at = None
            # Wake the watchdog: it saw the renewal while still fenced and went back to waiting
            # without a timer; unwoken, it would miss the next outage (no renewal to wake it).
            self._lease_changed.set()

    async def renew_forever(self) -> None:
        """Renew the cluster's lease every heartbeat; while the hub refuses connections (it is
        restarting), retry every `hub.unreachable_retry_seconds` instead, so the lease is renewed
        about a second after the hub is back rather than up to a heartbeat later. When the
        Assignment watch loses the hub (its stream breaks: a restart shorter than a heartbeat,
        which no renewal would otherwise notice) it pokes `_renew_now` and the renewal is tried at
        once, then every ~1 s while refused."""
        failing = False
        while True:
            started = time.monotonic()
            pause = self.config.capacity.heartbeat_seconds
            try:
                await self.renew_once()
                if failing:
                    log.info("cluster %s: lease renewed again", self.cluster_name)
                failing = False
            except (TemporaryError, PermanentError) as e:
                if isinstance(e, JoinRefused):
                    raise
                if not failing:
                    log.warning("cluster %s: lease renewal failed (%s)", self.cluster_name, e)
                failing = True
                if isinstance(e, HubUnreachable):
                    pause = min(pause, self.config.hub.unreachable_retry_seconds * (0.5 + random.random()))
            self._renew_now.clear()  # this renewal (or its failure) answers any earlier poke
            try:
                # A poke (the watch lost the hub) ends the pause early: the renewal is then
                # refused while the hub is down, which switches to the ~1 s retries above.
                await asyncio.wait_for(self._renew_now.wait(), max(0.0, pause - (time.monotonic() - started)))
            except TimeoutError:
                pass

    def _check_timing(self, hub_timeout: Any) -> None:
        if self._timing_checked:
            return
        self._timing_checked = True
        timeout = float(hub_timeout) if isinstance(hub_timeout, int | float) else None
        problem = timing_problem(self.config.lease.duration_seconds, self.config.capacity.heartbeat_seconds, timeout)
        if problem:
            log.warning("cluster %s: %s", self.cluster_name, problem)

    async def fence_when_lease_lost(self) -> None:
        """Self-fencing: when the lease has not been renewed for its duration, stop delivering
        and stop the failover: Replace copies (the hub is about to re-place them elsewhere)."""
        while True:
            now = time.monotonic()
            fenced = self.delivery is not None and self.delivery.fenced
            if fenced or not self.lease.expired(now):
                wait = None if fenced else max(0.05, self.lease.seconds_left(now))
                self._lease_changed.clear()
                try:
                    await asyncio.wait_for(self._lease_changed.wait(), timeout=wait)
                except TimeoutError:
                    pass
                continue
            if not self.config.lease.self_fencing or self.delivery is None:
                log.warning(
                    "cluster %s: lease not renewed for %.0fs; self-fencing is off, workloads keep running",
                    self.cluster_name,
                    now - (self.lease.renewed_at or now),
                )
                await self._lease_changed.wait()
                continue
            stopping = self.delivery.fence_self()
            self.fenced_at = now
            log.warning(
                "cluster %s: lease not renewed for %.1fs (lease %.0fs): fenced; stopping %d failover: Replace "
                "workload(s), applying nothing new until the hub answers",
                self.cluster_name,
                now - (self.lease.renewed_at or now),
                self.config.lease.duration_seconds,
                stopping,
            )

    # ------------------------------------------------------------ run

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        self._ready_since = now_rfc3339()
        tasks: list[asyncio.Task[Any]] = []
        stop_metrics = None
        if self.options.metrics_port is not None:
            try:
                from .metrics import serve  # prometheus_client is loaded only when asked for
            except ImportError as e:
                raise PermanentError(f"--metrics-port needs the prometheus-client package: {e}") from e
            port, address = self.options.metrics_port, self.options.metrics_address
            try:
                stop_metrics = serve(self, port, address)
            except OSError as e:  # taken, or not an address of this host
                raise PermanentError(
                    f"--metrics-port {port}: cannot listen on {address}:{port} (--metrics-address): {e.strerror or e}"
                ) from e
        try:
            await self._retry(self.login, "join")
            self.delivery = delivery = Delivery(
                self.cluster_name,
                self.hub,
                self.backend,
                self.config,
                on_capacity_change=self.capacity_changed,
                on_hub_lost=self._renew_now.set,
            )
            await self.backend.start(self.capacity_changed, delivery.objects_changed)
            self._kubernetes_version = await self.backend.kubernetes_version()
            await self._retry(self.mark_backend, "label the Cluster")
            await self._retry(delivery.inventory, "inventory the spoke")
            await self._retry(lambda: self.report(self.cluster_status()), "first report")
            tasks.append(asyncio.create_task(self.report_forever(), name="report"))
            tasks.append(asyncio.create_task(self.renew_forever(), name="lease"))
            tasks.append(asyncio.create_task(self.fence_when_lease_lost(), name="fence"))
            tasks.append(asyncio.create_task(delivery.watch_forever(), name="watch"))
            for i in range(self.config.delivery.workers):
                tasks.append(asyncio.create_task(delivery.reconcile_worker(), name=f"reconcile-{i}"))
            tasks.append(asyncio.create_task(delivery.status_worker(), name="status"))
            operator = getattr(self.backend, "operator_task", None)
            if operator is not None:
                tasks.append(operator)
            stopper = asyncio.create_task(stop.wait(), name="stop")
            synced = asyncio.create_task(delivery.synced.wait())
            await asyncio.wait([synced, stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            if delivery.synced.is_set():
                self.ready.set()
                log.info("cluster %s: agent ready (%s backend)", self.cluster_name, self.backend.name)
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            # kopf handles SIGINT/SIGTERM itself when it runs in the main thread: its operator
            # task ending (and it cancelling tasks on the way out) is a normal stop.
            stopping = stop.is_set() or (operator is not None and operator.done())
            for t in done:
                if t is stopper or t.cancelled():
                    continue
                if t.exception():
                    raise t.exception()  # type: ignore[misc]
                if not stopping:
                    raise PermanentError(f"agent task {t.get_name()} ended unexpectedly")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.backend.stop()
            await self.hub.aclose()
            if stop_metrics is not None:
                stop_metrics()

    async def _retry(self, fn: Any, what: str) -> Any:
        delay = 0.5
        while True:
            try:
                return await fn()
            except TemporaryError as e:
                log.warning("cluster %s: %s failed (%s); retrying in %.1fs", self.cluster_name, what, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)


class AgentThread:
    """Run one agent in a background thread (Python API for tests and embedding).

    agent = AgentThread(AgentOptions(hub=url, cluster_name="a", join_token=t, kubeconfig=kc)).start()
    ...
    agent.stop()
    """

    def __init__(self, options: AgentOptions, backend: Backend | None = None) -> None:
        self.options = options
        self._backend = backend
        self.agent: Agent | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"agent-{options.cluster_name}", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.agent = Agent(self.options, self._backend)

            async def signal_ready() -> None:
                await self.agent.ready.wait()  # type: ignore[union-attr]
                self._ready.set()

            waiter = asyncio.create_task(signal_ready())
            try:
                await self.agent.run(self._stop)
            finally:
                waiter.cancel()

        try:
            asyncio.run(main())
        except BaseException as e:
            self.error = e
        finally:
            self._ready.set()

    def start(self, timeout: float = 60.0) -> AgentThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"agent for {self.options.cluster_name} not ready after {timeout}s")
        if self.error is not None:
            raise self.error
        return self

    def call(self, fn: Any, timeout: float = 30.0) -> Any:
        """Run `fn()` (sync or async) in the agent's loop and return its result."""
        assert self._loop is not None

        async def wrapper() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)


def run_agent(options: AgentOptions) -> None:
    """Blocking entry point: run until SIGINT/SIGTERM (or a permanent error, raised)."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Agent(options).run(stop)

    asyncio.run(main())


def load_options(**kw: Any) -> AgentOptions:
    config_path = kw.pop("config", None)
    config = AgentConfig.load(Path(config_path) if config_path else None)
    return AgentOptions(config=config, **kw)
