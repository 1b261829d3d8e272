"""Helpers for tests, the lab and benchmarks: the one hub launcher (HubProcess), loopback
ports, and the one polling helper (wait_until). The hub never imports this package."""

from fleetplane_testing.hubprocess import FLEETPLANE, REPO, HubProcess, hub_command, wait_ready
from fleetplane_testing.ports import LOOPBACK, free_port, free_ports, port_in_use
from fleetplane_testing.waiting import wait_until

__all__ = [
    "FLEETPLANE",
    "LOOPBACK",
    "REPO",
    "HubProcess",
    "free_port",
    "free_ports",
    "hub_command",
    "port_in_use",
    "wait_ready",
    "wait_until",
]
