"""Fleetplane spoke agent: joins a member cluster to the hub, reports its GPU capacity,
applies the Assignments the hub gives it and reports their status.

Layers (imports go downwards only):
  cli / standalone       the command (typer for `fleetplane agent`, argparse for `python -m spoke_agent`)
  agent                  wiring, lifecycle, Python API (AgentThread)
  delivery               hub watch, reconcile, fencing, status
  hub / backends         I/O: the hub protocol (httpx); the spoke (kopf + httpx) or a simulated one
  capacity / phase / manifests / fencing / labels / settings   pure logic, no I/O
  lean                   imports kopf and httpx without the optional extras they would load
The agent imports nothing from the hub but `fleetplane_types`.
"""

__version__ = "0.1.0"
